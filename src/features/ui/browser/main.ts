// The upload page: the target document and credential from the form, files chosen or dropped, one
// row per upload (a <progress>, pause/resume/retry), and the document's attachments listed.
import { partitionKeyJson, type Target } from './api.js';
import { AttachmentList } from './list.js';
import { FileUpload, percent, type UploadView } from './upload.js';

const $ = <T extends HTMLElement>(id: string): T => {
  const element = document.getElementById(id);
  if (!element) throw new Error(`the page has no #${id}`);
  return element as T;
};

const form = $<HTMLFormElement>('target');
const fileInput = $<HTMLInputElement>('files');
const drop = $<HTMLElement>('drop');
const queue = $<HTMLUListElement>('queue');
const status = $<HTMLElement>('status');
const problem = $<HTMLElement>('problem');
const list = new AttachmentList($<HTMLUListElement>('attachments'), announce, showProblem);

const field = (name: string): string =>
  (form.elements.namedItem(name) as HTMLInputElement | null)?.value.trim() ?? '';

// The document may be named in the page's address (?db=&coll=&doc=&pk=); never a credential.
const params = new URLSearchParams(location.search);
for (const name of ['db', 'coll', 'doc', 'pk']) {
  const value = params.get(name);
  const input = form.elements.namedItem(name) as HTMLInputElement | null;
  if (value !== null && input) input.value = value;
}

/** Polite announcements for screen readers: state changes, not every step of progress. */
function announce(message: string): void {
  status.textContent = message;
}

function showProblem(message: string): void {
  problem.textContent = message;
  problem.hidden = message === '';
}

/** The target from the form, or undefined (with the reason shown) while something is missing. */
function currentTarget(): Target | undefined {
  const missing = ['db', 'coll', 'doc'].filter((name) => field(name) === '');
  if (missing.length > 0) {
    showProblem(`Fill in ${missing.map((name) => labelOf(name)).join(', ')} first.`);
    (form.elements.namedItem(missing[0]!) as HTMLInputElement).focus();
    return undefined;
  }
  showProblem('');
  const kind = (form.elements.namedItem('kind') as RadioNodeList).value === 'bearer' ? 'bearer' : 'key';
  return {
    base: document.body.dataset.apiBase ?? '/api',
    db: field('db'),
    coll: field('coll'),
    doc: field('doc'),
    partitionKey: partitionKeyJson(field('pk'), field('doc')),
    credential: { kind, value: field('credential') },
  };
}

function labelOf(name: string): string {
  return document.querySelector(`label[for="${name}"]`)?.textContent?.trim() ?? name;
}

form.addEventListener('submit', (event) => {
  event.preventDefault();
  const target = currentTarget();
  if (target) void list.show(target);
});

fileInput.addEventListener('change', () => {
  if (fileInput.files) uploadAll([...fileInput.files]);
  fileInput.value = '';
});

// Dropping files anywhere on the drop zone; the zone says when a drag is over it.
drop.addEventListener('dragover', (event) => {
  event.preventDefault();
  drop.classList.add('over');
});
drop.addEventListener('dragleave', () => drop.classList.remove('over'));
drop.addEventListener('drop', (event) => {
  event.preventDefault();
  drop.classList.remove('over');
  const files = [...(event.dataTransfer?.files ?? [])];
  if (files.length > 0) uploadAll(files);
});

let rows = 0;

function uploadAll(files: File[]): void {
  const target = currentTarget();
  if (!target) return;
  const chunkKiB = Number(field('chunk')) || 5120;
  const options = {
    chunkSize: Math.max(1, Math.round(chunkKiB * 1024)),
    uniqueId: (form.elements.namedItem('unique') as HTMLInputElement).checked,
  };
  announce(`${files.length} ${files.length === 1 ? 'file' : 'files'} added to the uploads.`);
  for (const file of files) {
    const row = uploadRow(file, ++rows);
    const upload = new FileUpload(file, target, options, (view) => row.render(view));
    row.bind(upload);
    upload.start();
  }
}

/** One upload's row: the name, a labelled <progress>, words for the state, and the buttons it allows. */
function uploadRow(file: File, n: number) {
  const item = document.createElement('li');
  item.className = 'upload';
  const label = document.createElement('label');
  label.htmlFor = `progress-${n}`;
  label.className = 'name';
  label.textContent = file.name;
  const progress = document.createElement('progress');
  progress.id = `progress-${n}`;
  progress.max = 100;
  progress.value = 0;
  const words = document.createElement('span');
  words.className = 'state';
  words.id = `state-${n}`;
  progress.setAttribute('aria-describedby', words.id);
  const buttons = document.createElement('div');
  buttons.className = 'buttons';
  const button = (text: string) => {
    const element = document.createElement('button');
    element.type = 'button';
    element.textContent = text;
    element.setAttribute('aria-label', `${text} ${file.name}`);
    buttons.append(element);
    return element;
  };
  const pause = button('Pause');
  const resume = button('Resume');
  const retry = button('Retry');
  item.append(label, progress, words, buttons);
  queue.append(item);
  let last: UploadView['state'] | undefined;
  return {
    bind(upload: FileUpload) {
      // The clicked button hides: keyboard focus moves to the one that takes its place.
      pause.addEventListener('click', () => {
        upload.pause();
        resume.focus();
      });
      const goOn = () => {
        upload.resume();
        if (!pause.hidden) pause.focus();
      };
      resume.addEventListener('click', goOn);
      retry.addEventListener('click', goOn);
    },
    render(view: UploadView) {
      item.dataset.state = view.state;
      progress.value = view.state === 'done' ? 100 : percent(view);
      progress.setAttribute('aria-valuetext', `${progress.value} %`);
      words.textContent = view.via === 'multipart' ? `${view.detail} (one request)` : view.detail;
      pause.hidden = view.state !== 'uploading';
      resume.hidden = view.state !== 'paused';
      retry.hidden = view.state !== 'failed';
      if (view.state !== last) {
        last = view.state;
        if (view.state === 'done') {
          announce(`${file.name} uploaded.`);
          const target = currentTarget();
          if (target) void list.show(target);
        } else if (view.state !== 'uploading') {
          announce(`${file.name}: ${view.detail}`);
        }
      }
    },
  };
}
