import { z } from 'zod';

// zod compiles fast parsers with `new Function` unless told not to, and probes for it on the first
// parse; our CSP forbids eval and must stay so. Imported first by main.tsx, before any schema runs.
z.config({ jitless: true });
