import { ApiError, fetchMedia, listAttachments, type Attachment, type Target } from './api.js';

/** Images up to this size get a thumbnail (it is fetched whole); larger ones only a download button. */
const THUMBNAIL_MAX_BYTES = 5 * 1024 * 1024;

/**
 * The document's attachments: name, type, a thumbnail for images and a download button. Media is
 * fetched with the caller's credentials and shown through object URLs, which are let go on the next
 * refresh.
 */
export class AttachmentList {
  readonly #element: HTMLUListElement;
  readonly #announce: (message: string) => void;
  readonly #showProblem: (message: string) => void;
  #objectUrls: string[] = [];
  #shown = 0;

  constructor(
    element: HTMLUListElement,
    announce: (message: string) => void,
    showProblem: (message: string) => void,
  ) {
    this.#element = element;
    this.#announce = announce;
    this.#showProblem = showProblem;
  }

  async show(target: Target): Promise<void> {
    const turn = ++this.#shown;
    this.#element.setAttribute('aria-busy', 'true');
    let attachments: Attachment[];
    try {
      attachments = await listAttachments(target);
    } catch (err) {
      if (turn === this.#shown) {
        this.#element.removeAttribute('aria-busy');
        this.#showProblem(`The attachments could not be listed: ${messageOf(err)}`);
      }
      return;
    }
    // A later refresh started meanwhile: its answer is the one to show.
    if (turn !== this.#shown) return;
    for (const url of this.#objectUrls) URL.revokeObjectURL(url);
    this.#objectUrls = [];
    this.#element.replaceChildren(...attachments.map((attachment) => this.#row(target, attachment)));
    if (attachments.length === 0) {
      const empty = document.createElement('li');
      empty.textContent = 'This document has no attachments yet.';
      this.#element.append(empty);
    }
    this.#element.removeAttribute('aria-busy');
    this.#announce(
      `${attachments.length} ${attachments.length === 1 ? 'attachment' : 'attachments'} listed.`,
    );
  }

  #row(target: Target, attachment: Attachment): HTMLLIElement {
    const item = document.createElement('li');
    item.className = 'attachment';
    item.dataset.id = attachment.id;
    const name = document.createElement('span');
    name.className = 'name';
    name.textContent = attachment.originalName
      ? `${attachment.originalName} (${attachment.id})`
      : attachment.id;
    const type = document.createElement('span');
    type.className = 'type';
    type.textContent = [attachment.contentType, attachment.size === undefined ? '' : size(attachment.size)]
      .filter(Boolean)
      .join(', ');
    const download = document.createElement('button');
    download.type = 'button';
    download.textContent = 'Download';
    download.setAttribute('aria-label', `Download ${attachment.id}`);
    download.addEventListener('click', () => void this.#download(target, attachment, download));
    item.append(name, type, download);
    const small = attachment.size === undefined || attachment.size <= THUMBNAIL_MAX_BYTES;
    if (attachment.contentType?.startsWith('image/') && small) {
      const image = document.createElement('img');
      image.className = 'thumbnail';
      image.alt = `Preview of ${attachment.id}`;
      item.prepend(image);
      fetchMedia(target, attachment.id)
        .then((blob) => {
          image.src = this.#objectUrl(blob);
        })
        .catch(() => image.remove());
    }
    return item;
  }

  async #download(target: Target, attachment: Attachment, button: HTMLButtonElement): Promise<void> {
    // aria-disabled rather than disabled: a disabled button would drop the keyboard focus.
    if (button.getAttribute('aria-disabled') === 'true') return;
    button.setAttribute('aria-disabled', 'true');
    this.#announce(`Downloading ${attachment.id}…`);
    try {
      const blob = await fetchMedia(target, attachment.id);
      const link = document.createElement('a');
      link.href = this.#objectUrl(blob);
      link.download = attachment.originalName ?? attachment.id;
      link.hidden = true;
      document.body.append(link);
      link.click();
      link.remove();
      this.#announce(`${attachment.id} downloaded.`);
    } catch (err) {
      this.#showProblem(`${attachment.id} could not be downloaded: ${messageOf(err)}`);
    } finally {
      button.removeAttribute('aria-disabled');
    }
  }

  #objectUrl(blob: Blob): string {
    const url = URL.createObjectURL(blob);
    this.#objectUrls.push(url);
    return url;
  }
}

function messageOf(err: unknown): string {
  return err instanceof ApiError ? err.message : 'something went wrong in the page.';
}

function size(bytes: number): string {
  if (bytes < 1024) return `${bytes} bytes`;
  if (bytes < 1024 * 1024) return `${(bytes / 1024).toFixed(1)} KiB`;
  return `${(bytes / 1024 / 1024).toFixed(1)} MiB`;
}
