/**
 * Per-request deadlines (the body read, the request deadline, the first-content and image
 * deadlines) without a Node timer each. Every deadline of one duration goes into one list, in
 * the order it was set, which is also the order it expires in; one unref'd Node timer per list
 * wakes at the head's expiry, fires what has expired and sleeps until the next head. Setting and
 * cancelling a deadline is linking and unlinking a node; a Node `Timeout` per request, with its
 * async id and list bookkeeping, cost more (bench/README.md, "Against the floor").
 *
 * The timer is unref'd, as node:http's own request timeouts are: a deadline guards work that holds
 * the process open by itself (a socket, an upstream request), and never keeps an idle process
 * alive. It fires no earlier than a `setTimeout` of the same duration would, and at most a
 * millisecond or so later.
 */

/** A deadline that has been set: `cancel()` it once what it guards is over (safe to call twice). */
export interface PendingDeadline {
  cancel(): void;
}

/** Calls `fire` once `ms` milliseconds have passed, unless cancelled first. */
export function after(ms: number, fire: () => void): PendingDeadline {
  let list = lists.get(ms);
  if (list === undefined) {
    list = new DeadlineList(ms);
    lists.set(ms, list);
  }
  return list.add(fire);
}

const maxDelayMs = 2 ** 31 - 1;

/** The lists by duration: durations are configured values, so there are a handful. */
const lists = new Map<number, DeadlineList>();

class DeadlineNode implements PendingDeadline {
  previous: DeadlineNode | undefined = undefined;
  next: DeadlineNode | undefined = undefined;
  linked = true;

  constructor(
    private readonly list: DeadlineList,
    readonly at: number,
    readonly fire: () => void,
  ) {}

  cancel(): void {
    if (this.linked) this.list.unlink(this);
  }
}

class DeadlineList {
  #head: DeadlineNode | undefined;
  #tail: DeadlineNode | undefined;
  /** The Node timer, while one is armed (for the head, or for a head since cancelled). */
  #timer: NodeJS.Timeout | undefined;
  /** Firing expired deadlines: one set meanwhile (a fired one may set another) arms nothing yet. */
  #waking = false;

  constructor(readonly ms: number) {}

  add(fire: () => void): DeadlineNode {
    const node = new DeadlineNode(this, performance.now() + this.ms, fire);
    const tail = this.#tail;
    if (tail === undefined) this.#head = node;
    else {
      tail.next = node;
      node.previous = tail;
    }
    this.#tail = node;
    // An armed timer wakes no later than this node's expiry (it was armed for an earlier one).
    if (this.#timer === undefined && !this.#waking) this.#arm(node.at);
    return node;
  }

  unlink(node: DeadlineNode): void {
    node.linked = false;
    const { previous, next } = node;
    if (previous === undefined) this.#head = next;
    else previous.next = next;
    if (next === undefined) this.#tail = previous;
    else next.previous = previous;
    node.previous = undefined;
    node.next = undefined;
    // The timer stays armed: re-arming on every cancel costs more than one spare wake-up.
  }

  #arm(at: number): void {
    // Node fires a delay past 2^31 - 1 ms at once: a longer one wakes at that bound and re-arms.
    this.#timer = setTimeout(this.#wake, Math.min(maxDelayMs, Math.max(1, Math.ceil(at - performance.now())))).unref();
  }

  readonly #wake = (): void => {
    this.#timer = undefined;
    this.#waking = true;
    const now = performance.now();
    let node = this.#head;
    while (node !== undefined && node.at <= now) {
      this.unlink(node);
      try {
        node.fire();
      } catch (error) {
        // One deadline's failure must not stop the others: rethrown outside this loop.
        queueMicrotask(() => {
          throw error;
        });
      }
      node = this.#head;
    }
    this.#waking = false;
    // One timer, for the earliest deadline left (those set while firing included).
    if (node !== undefined) this.#arm(node.at);
  };
}
