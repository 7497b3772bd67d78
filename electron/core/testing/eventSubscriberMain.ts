// A local HTTPS event subscriber in a process of its own (the benchmark: its TLS work must not
// share the core's thread). Sends `{ url, cert }` once listening, then answers `count` messages (events received, distinct event ids).
import { startEventSubscriber } from './eventSubscriber';

const sub = await startEventSubscriber();
process.send?.({ url: sub.url, cert: sub.cert });
process.on('message', (m: unknown) => {
  // Deliveries are at least once: the same event id may arrive twice (a cut connection, a restart).
  if (m === 'count') process.send?.({ count: sub.received.length, unique: new Set(sub.received.map((e) => e.body.id)).size });
  if (m === 'stop') void sub.close().then(() => process.exit(0));
});
