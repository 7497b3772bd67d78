// `npm run policy-schema`: writes build/policy.schema.json, the published JSON Schema of the
// managed policy, from the zod schema the app validates with (a test checks it is current).
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { z } from 'zod';
import { PolicySchema } from '../shared/policy';

export const POLICY_SCHEMA_FILE = join(import.meta.dirname, '..', 'build', 'policy.schema.json');

export function policyJsonSchema(): string {
  const schema = z.toJSONSchema(PolicySchema, { target: 'draft-2020-12' }) as Record<string, unknown>;
  const properties = { $schema: { type: 'string' }, ...(schema['properties'] as object) };
  return `${JSON.stringify({ ...schema, $id: 'https://clinic-inbox.eu/schemas/policy.schema.json', title: 'Clinic Inbox managed policy', properties }, null, 2)}\n`;
}

if (process.argv[1] === import.meta.filename) {
  writeFileSync(POLICY_SCHEMA_FILE, policyJsonSchema());
  process.stdout.write(`wrote ${POLICY_SCHEMA_FILE}\n`);
}
