/** Sample transcripts with the judge's verdict and reason, as text (rendered escaped). */
import type { Transcript } from '../model.js';
import { absent, type Section } from '../section.js';

export function transcriptsSection(data: Transcript[] | undefined): Section {
  const id = 'transcripts';
  const title = 'Sample transcripts';
  if (!data || data.length === 0) return absent(id, title, 'No sample transcripts in the summary.');
  return {
    id,
    title,
    description: 'Replies exactly as the models wrote them (shown as text), with the judge\'s verdict and reason where one was asked.',
    plots: [],
    tables: [],
    transcripts: data,
  };
}
