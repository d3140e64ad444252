/** A misconfiguration, reported at start. The message names the setting and never holds its value. */
export class SettingsError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'SettingsError';
  }
}
