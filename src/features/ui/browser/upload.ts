import { DetailedError, Upload } from 'tus-js-client';
import { ApiError, attachmentsUrl, describeFailure, headersFor, type Target } from './api.js';

export type UploadState = 'waiting' | 'uploading' | 'paused' | 'offline' | 'done' | 'failed';

/** What the page shows of one file's upload, each time it changes. */
export interface UploadView {
  state: UploadState;
  /** Bytes the bridge has (or, while a request is in flight, that were sent), of `total`. */
  sent: number;
  total: number;
  /** Words for the state: the bridge's message when it failed. */
  detail: string;
  /** How the bytes travel: tus (resumable) or one multipart POST (the fall-back). */
  via: 'tus' | 'multipart';
}

export interface UploadOptions {
  /** Bytes per PATCH; smaller chunks lose less to a dropped connection. */
  chunkSize: number;
  /** Ask the bridge for a fresh id (the file's name kept as `originalName`) instead of the name itself. */
  uniqueId: boolean;
}

/** Waits between tries after a failure the network or the service may get over. */
const RETRY_DELAYS = [0, 1000, 3000, 5000];

/**
 * One file's upload: tus to the bridge's resumable route (pause, resume, retry, and a connection that
 * drops waits for the browser to come back online), or a multipart POST when the bridge does not offer
 * tus (its creation answers 404, 405 or 501, or resumable uploads are not configured).
 */
export class FileUpload {
  readonly #file: File;
  readonly #target: Target;
  readonly #options: UploadOptions;
  readonly #onChange: (view: UploadView) => void;
  #view: UploadView;
  #tus: Upload | undefined;
  #xhr: XMLHttpRequest | undefined;
  readonly #resumeWhenOnline = () => {
    if (this.#view.state === 'offline') this.resume();
  };

  constructor(file: File, target: Target, options: UploadOptions, onChange: (view: UploadView) => void) {
    this.#file = file;
    this.#target = target;
    this.#options = options;
    this.#onChange = onChange;
    this.#view = { state: 'waiting', sent: 0, total: file.size, detail: 'Waiting', via: 'tus' };
    window.addEventListener('online', this.#resumeWhenOnline);
  }

  get view(): UploadView {
    return this.#view;
  }

  start(): void {
    if (this.#view.via === 'multipart') this.#startMultipart();
    else this.#startTus();
  }

  pause(): void {
    if (this.#view.state !== 'uploading' && this.#view.state !== 'offline') return;
    if (this.#tus) void this.#tus.abort();
    // A multipart POST cannot continue where it stopped: resuming sends the file again.
    this.#xhr?.abort();
    this.#update({ state: 'paused', detail: `Paused at ${percent(this.#view)} %` });
  }

  /** Continues a paused or failed upload from what the bridge has (tus asks it for the offset). */
  resume(): void {
    if (!['paused', 'failed', 'offline'].includes(this.#view.state)) return;
    this.start();
  }

  dispose(): void {
    window.removeEventListener('online', this.#resumeWhenOnline);
    if (this.#tus) void this.#tus.abort();
    this.#xhr?.abort();
  }

  #update(change: Partial<UploadView>): void {
    this.#view = { ...this.#view, ...change };
    this.#onChange(this.#view);
  }

  #startTus(): void {
    this.#update({ state: 'uploading', detail: `Uploading ${percent(this.#view)} %` });
    this.#tus ??= new Upload(this.#file, {
      endpoint: `${location.origin}${attachmentsUrl(this.#target)}/uploads`,
      headers: headersFor(this.#target),
      metadata: {
        filename: this.#file.name,
        filetype: this.#file.type || 'application/octet-stream',
        ...(this.#options.uniqueId ? { uniqueId: 'true' } : {}),
      },
      chunkSize: this.#options.chunkSize,
      retryDelays: RETRY_DELAYS,
      // A reload of the page can pick the upload up where it stopped (the same file, same document).
      storeFingerprintForResuming: true,
      removeFingerprintOnSuccess: true,
      onProgress: (sent, total) => {
        if (this.#view.state !== 'uploading') return;
        // 100 % only once the bridge has said so: the last bytes sent are not yet an attachment.
        const shown = Math.min(sent, Math.max(0, total - 1));
        this.#update({ sent: shown, total, detail: `Uploading ${percent({ sent: shown, total })} %` });
      },
      onShouldRetry: (error) => {
        const response = error.originalResponse;
        const status = response?.getStatus() ?? 0;
        // A bridge that does not take tus here, or is misconfigured, says the same on every try.
        if (status !== 0 && refusesTus(describeFailure(status, response?.getBody() ?? ''))) return false;
        // A conflict at creation is a name already taken: trying again cannot help. Later, 409 is an
        // offset the bridge disagrees with, which the next try (HEAD first) puts right.
        const creating = error.originalRequest?.getMethod() === 'POST' && this.#tus?.url === null;
        if (creating && status === 409) return false;
        // tus-js-client's own rule otherwise: a server failure, a conflict or a lock, while online.
        return (status < 400 || status >= 500 || status === 409 || status === 423) && navigator.onLine;
      },
      onSuccess: () => this.#succeed(),
      onError: (error) => this.#tusFailed(error),
    });
    void this.#tus
      .findPreviousUploads()
      .then((previous) => {
        const last = previous.at(-1);
        if (last && this.#tus?.url === null) this.#tus.resumeFromPreviousUpload(last);
        this.#tus?.start();
      })
      .catch(() => this.#tus?.start());
  }

  #tusFailed(error: Error | DetailedError): void {
    const response = error instanceof DetailedError ? error.originalResponse : null;
    const request = error instanceof DetailedError ? error.originalRequest : null;
    if (!response || response.getStatus() === 0) {
      // No answer at all: the network. Offline, it goes on by itself when the browser is back online.
      if (!navigator.onLine) {
        this.#update({ state: 'offline', detail: 'Waiting for the network to come back' });
        return;
      }
      this.#update({ state: 'failed', detail: 'The network connection failed. Retry when it is back.' });
      return;
    }
    const failure = describeFailure(response.getStatus(), response.getBody() ?? '');
    if (request?.getMethod() === 'POST' && refusesTus(failure)) {
      this.#tus = undefined;
      this.#update({ via: 'multipart' });
      this.#startMultipart();
      return;
    }
    this.#fail(failure);
  }

  #startMultipart(): void {
    this.#update({ state: 'uploading', sent: 0, detail: 'Uploading 0 %' });
    const form = new FormData();
    form.append('file', this.#file, this.#file.name);
    const xhr = new XMLHttpRequest();
    this.#xhr = xhr;
    xhr.open('POST', attachmentsUrl(this.#target));
    for (const [name, value] of Object.entries(headersFor(this.#target))) xhr.setRequestHeader(name, value);
    if (this.#options.uniqueId) xhr.setRequestHeader('x-bridge-id-mode', 'unique');
    xhr.upload.onprogress = (event) => {
      if (this.#xhr !== xhr || !event.lengthComputable) return;
      // The body is a little larger than the file: scale to the file.
      const sent = Math.min(this.#file.size - 1, Math.round((event.loaded / event.total) * this.#file.size));
      this.#update({
        sent: Math.max(0, sent),
        detail: `Uploading ${percent({ sent, total: this.#file.size })} %`,
      });
    };
    xhr.onload = () => {
      if (this.#xhr !== xhr) return;
      if (xhr.status >= 200 && xhr.status < 300) this.#succeed();
      else this.#fail(describeFailure(xhr.status, xhr.responseText));
    };
    xhr.onerror = () => {
      if (this.#xhr !== xhr) return;
      if (!navigator.onLine)
        this.#update({ state: 'offline', detail: 'Waiting for the network to come back' });
      else this.#fail(new ApiError('The network connection failed.', 0, undefined));
    };
    xhr.send(form);
  }

  #succeed(): void {
    window.removeEventListener('online', this.#resumeWhenOnline);
    this.#update({ state: 'done', sent: this.#file.size, detail: 'Uploaded' });
  }

  #fail(failure: ApiError): void {
    this.#update({ state: 'failed', detail: failure.message });
  }
}

/** A creation refused because the bridge does not take tus here: the multipart route still may. */
function refusesTus(failure: ApiError): boolean {
  return (
    [404, 405, 501].includes(failure.status) ||
    (failure.status === 500 && failure.code === 'ConfigurationError')
  );
}

export function percent(view: Pick<UploadView, 'sent' | 'total'>): number {
  return view.total === 0 ? 0 : Math.floor((view.sent / view.total) * 100);
}
