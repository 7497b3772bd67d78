// A local HTTPS event subscriber in a process of its own (the benchmark: its TLS work must not
// share the core's thread). Sends `{ url, cert }` once listening; told `{ secret }`, it verifies every
// request's signature on arrival as a practice-management system would (401 when it does not
// verify). Answers `count` with the events received, the distinct event ids and the forged ones.
import { startEventSubscriber } from './eventSubscriber';

let secret: string | null = null;
const sub = await startEventSubscriber({ secret: () => secret });
process.send?.({ url: sub.url, cert: sub.cert });
// Deliveries are at least once: the same event id may arrive twice (a cut connection, a restart).
// Counted as they come, so a count asked often costs nothing more than the new arrivals.
const ids = new Set<string>();
let counted = 0;
process.on('message', (m: unknown) => {
  if (typeof m === 'object' && m !== null && 'secret' in m) secret = String((m as { secret: unknown }).secret);
  if (m === 'count') {
    for (; counted < sub.received.length; counted++) ids.add(sub.received[counted]!.body.id);
    process.send?.({ count: sub.received.length, unique: ids.size, forged: sub.forged });
  }
  if (m === 'stop') void sub.close().then(() => process.exit(0));
});
