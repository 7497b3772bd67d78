import { REACTION_MAX_AGE_MS } from '../window';

/**
 * The simulator's rules for reaction sends, as Meta documents them (Cloud API, "Reaction
 * messages"): the request is `{messaging_product, recipient_type: "individual", to|recipient,
 * type: "reaction", reaction: {message_id, emoji}}` with nothing else in `reaction` and no reply
 * `context` (refused with 400, #100); an empty emoji removes the reaction. Meta accepts a reaction
 * to a message it will not deliver it on — one the user did not send to this business, more than
 * 30 days old, or a reaction itself — and reports that afterwards as a `failed` status webhook with
 * 131009. Reactions get only a `sent` status, never delivered or read.
 */


/** An inbound message the simulator posted (or a test noted): who sent it and when. */
export interface SimInboundMessage {
  from: string;
  at: number;
}

/** The exact request shape: a 400 (#100) detail, or null when the shape is Meta's. */
export function reactionShapeProblem(body: unknown): string | null {
  const b = body as Record<string, unknown>;
  if (b['recipient_type'] !== 'individual') return 'Parameter recipient_type must be "individual"';
  if ('context' in b) return 'Reply context is not supported for reaction messages';
  const reaction = b['reaction'];
  if (typeof reaction !== 'object' || reaction === null) return 'Parameter reaction is required';
  const keys = Object.keys(reaction).sort();
  if (keys.join(',') !== 'emoji,message_id') return `Parameter reaction must have exactly message_id and emoji (got ${keys.join(', ')})`;
  if (typeof (reaction as { emoji: unknown }).emoji !== 'string') return 'Parameter reaction.emoji must be a string';
  return null;
}

/** Why Meta would not deliver this reaction (131009 afterwards), or null when it would. */
export function reactionDeliveryProblem(target: SimInboundMessage | undefined, addressee: string, at: number): string | null {
  if (!target || target.from !== addressee) return 'The message to react to is not one this user sent to the business';
  if (at - target.at > REACTION_MAX_AGE_MS) return 'The message to react to is more than 30 days old';
  return null;
}
