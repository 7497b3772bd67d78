// Opens the core store the way the core does (real keychain) in the data folder given as the
// first argument, and prints one JSON line: {ok:true, backend} or {ok:false, code, message}.
// Used by tests that need a separate process with its own environment (e.g. no D-Bus session).
import pino from 'pino';
import { CodedError } from '../../../shared/errors';
import { openCoreStore } from '../db/coreStore';
import { createKeytarSecretStore } from '../keys/secretStore';

const dataDir = process.argv[2];
if (!dataDir) throw new Error('usage: openStoreChild.ts <dataDir>');
try {
  const secrets = await createKeytarSecretStore();
  const store = await openCoreStore({ dataDir, secrets, logger: pino({ level: 'silent' }) });
  store.close();
  process.stdout.write(`${JSON.stringify({ ok: true, backend: store.keys.backend })}\n`);
} catch (err) {
  const coded = err instanceof CodedError ? err : new CodedError('INTERNAL', String(err));
  process.stdout.write(`${JSON.stringify({ ok: false, code: coded.code, message: coded.message })}\n`);
}
