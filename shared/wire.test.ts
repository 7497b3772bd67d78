import { describe, expect, it } from 'vitest';
import { ApplianceFrameSchema, RelayFrameSchema, wsAuthPayload } from './wire';
import { envelopeAad } from './envelope';
import { EnrolRequestSchema } from './enrolment';

describe('wire protocol', () => {
  it('accepts a well-formed deliver frame and refuses one without an envelope', () => {
    const envelope = { v: 1, enc: 'A'.repeat(43), ct: 'B'.repeat(40), receivedAt: 1 };
    expect(RelayFrameSchema.safeParse({ type: 'deliver', seq: 1, envelope }).success).toBe(true);
    expect(RelayFrameSchema.safeParse({ type: 'deliver', seq: 1 }).success).toBe(false);
    expect(RelayFrameSchema.safeParse({ type: 'deliver', seq: 0, envelope }).success).toBe(false);
  });

  it('refuses unknown appliance frame types', () => {
    expect(ApplianceFrameSchema.safeParse({ type: 'ack', seq: 3 }).success).toBe(true);
    expect(ApplianceFrameSchema.safeParse({ type: 'drop-table' }).success).toBe(false);
  });

  it('binds the upgrade signature to the appliance, time and nonce', () => {
    const a = wsAuthPayload('app-1', 1000, 'n1');
    expect(wsAuthPayload('app-2', 1000, 'n1')).not.toBe(a);
    expect(wsAuthPayload('app-1', 1001, 'n1')).not.toBe(a);
    expect(wsAuthPayload('app-1', 1000, 'n2')).not.toBe(a);
  });
});

describe('envelope associated data', () => {
  it('differs for every tenant, appliance, seq and receive time', () => {
    const base = { tenantId: 't1', applianceId: 'a1', seq: 7, receivedAt: 1000 };
    const variants = [
      { ...base, tenantId: 't2' },
      { ...base, applianceId: 'a2' },
      { ...base, seq: 8 },
      { ...base, receivedAt: 1001 },
    ];
    for (const v of variants) expect(envelopeAad(v)).not.toBe(envelopeAad(base));
  });
});

describe('enrolment request', () => {
  it('normalises a typed code and refuses ambiguous characters', () => {
    const keys = { signingPublicKey: 'A'.repeat(43), encryptionPublicKey: 'A'.repeat(43) };
    expect(EnrolRequestSchema.parse({ code: ' abcd-efgh-jkmn-pqrs ', ...keys }).code).toBe('ABCD-EFGH-JKMN-PQRS');
    expect(EnrolRequestSchema.safeParse({ code: 'ABCD-EFGH-IJKL-MNOP', ...keys }).success).toBe(false);
  });
});
