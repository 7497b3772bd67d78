import { z } from 'zod';
import { Key32Schema } from '../../../shared/encoding';
import type { Database } from '../db/types';
import { getSetting, setSetting } from '../db/repo/settings';

/** What the appliance remembers of its relay after enrolment. Public values only; no secrets. */
export const PairingSchema = z.object({
  relayUrl: z.string().url(),
  tenantId: z.string(),
  applianceId: z.string(),
  /** The relay's X25519 key pinned at enrolment: the only envelope sender this appliance accepts. */
  relayEncryptionPublicKey: Key32Schema,
  phoneNumberIds: z.array(z.string()),
  pairedAt: z.number().int(),
  /**
   * The device signing key (raw Ed25519, base64url) this pairing was made with. Absent in pairings
   * saved by older versions until their next successful connection. A keychain holding another key
   * (the database restored on new hardware) means the relay can no longer know this computer.
   */
  deviceSigningPublicKey: Key32Schema.optional(),
});
export type Pairing = z.infer<typeof PairingSchema>;

const PAIRING_KEY = 'relay_pairing';

export function loadPairing(db: Database): Pairing | null {
  const raw = getSetting(db, PAIRING_KEY);
  if (raw === null) return null;
  const parsed = PairingSchema.safeParse(JSON.parse(raw));
  return parsed.success ? parsed.data : null;
}

export function savePairing(db: Database, pairing: Pairing, now: number): void {
  setSetting(db, PAIRING_KEY, JSON.stringify(pairing), now);
}
