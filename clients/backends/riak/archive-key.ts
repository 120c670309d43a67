/**
 * A MongooseIM archive object's name: bucket `mam_<ISOYEAR>_<WEEK>` of the `mam_yz` type, key
 * `<LOCAL>/<REMOTE>/<MSGID>` (storage reference §3.1). LOCAL is a bare JID (no '/'); REMOTE may
 * hold '/' (a MUC nick), so only the first '/' is a safe split.
 */

/** The key's part before the first '/': the archive owner (room or user), or null if there is none. */
export function archiveOwner(key: string): string | null {
  const slash = key.indexOf('/');
  if (slash <= 0) return null;
  return key.slice(0, slash);
}
