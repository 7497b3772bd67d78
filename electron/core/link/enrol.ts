import { CodedError } from '../../../shared/errors';
import type { EnrolResponse } from '../../../shared/enrolment';
import { ENROL_PATH, EnrolRequestSchema, EnrolResponseSchema, HttpErrorBodySchema } from '../../../shared/enrolment';
import { isAllowedRelayUrl } from '../../../shared/urls';

/**
 * The relay must be reached over TLS; plain HTTP only to this machine itself (tests, the demo,
 * a relay on the same host behind nothing).
 */
export function checkRelayUrl(relayUrl: string): URL {
  let url: URL;
  try {
    url = new URL(relayUrl);
  } catch {
    throw new CodedError('VALIDATION_FAILED', 'The relay address is not a valid URL (expected https://relay.example.eu).');
  }
  if (!isAllowedRelayUrl(relayUrl)) {
    throw new CodedError('VALIDATION_FAILED', 'The relay address must start with https:// (plain http is allowed only for this computer).');
  }
  return url;
}

export interface EnrolInput {
  relayUrl: string;
  code: string;
  signingPublicKey: string;
  encryptionPublicKey: string;
  label?: string;
}

/** Redeem an operator's one-time enrolment code; returns the ids and the relay key to pin. */
export async function enrolWithRelay(input: EnrolInput, fetchImpl: typeof fetch = fetch): Promise<EnrolResponse> {
  const url = checkRelayUrl(input.relayUrl);
  const body = EnrolRequestSchema.safeParse({
    code: input.code,
    signingPublicKey: input.signingPublicKey,
    encryptionPublicKey: input.encryptionPublicKey,
    ...(input.label ? { label: input.label } : {}),
  });
  if (!body.success) {
    throw new CodedError('ENROLMENT_CODE_INVALID', 'The enrolment code should look like ABCD-EFGH-JKLM-NPQR.');
  }
  let res: Response;
  try {
    res = await fetchImpl(new URL(ENROL_PATH, url), {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(body.data),
      signal: AbortSignal.timeout(15_000),
    });
  } catch {
    throw new CodedError('UNAVAILABLE', `The relay at ${url.host} could not be reached. Check the address and the network.`);
  }
  const json: unknown = await res.json().catch(() => null);
  if (!res.ok) {
    const err = HttpErrorBodySchema.safeParse(json);
    if ([400, 401, 403, 404, 410].includes(res.status)) {
      throw new CodedError(
        'ENROLMENT_CODE_INVALID',
        err.success ? err.data.error.message : 'The relay did not accept this enrolment code: it may be mistyped, used or expired.',
      );
    }
    throw new CodedError('UNAVAILABLE', `The relay answered ${res.status}; try again in a minute.`);
  }
  const parsed = EnrolResponseSchema.safeParse(json);
  if (!parsed.success) throw new CodedError('UNAVAILABLE', 'The relay answered enrolment in an unexpected shape.');
  return parsed.data;
}
