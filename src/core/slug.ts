/**
 * The file-system name of a persona, used by every stage for its folders and journal keys
 * (datasets/<slug>, steer/<slug>, adapters/<slug>): accents dropped ("Zoë" -> "zoe"), lower case,
 * runs of other characters -> "-".
 */
export function personaSlug(name: string): string {
  return (
    name
      .normalize('NFKD')
      .replace(/[\u0300-\u036f]/g, '')
      .toLowerCase()
      .replace(/[^a-z0-9]+/g, '-')
      .replace(/^-|-$/g, '') || 'persona'
  );
}
