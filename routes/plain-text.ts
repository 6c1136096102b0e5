import type { Response } from 'express';

/**
 * A reply in words for a person, as WebSub refusals (REC §5.1.2), the stream and operator faces
 * and the app's own 404 and 500 give it. Ended by a newline, so that what curl or a script
 * prints stands on its own line.
 */
export function sendText(res: Response, status: number, words: string): void {
  res.status(status).type('text/plain; charset=utf-8').send(words.endsWith('\n') ? words : `${words}\n`);
}
