/**
 * A bounded read-ahead buffer between a download and its consumer. Without
 * it, a WADO-RS body is read only when the DIMSE sender asks for the next
 * chunk, so the transfer from the archive and the transfer to the C-STORE
 * peer take turns instead of overlapping (each waits for the other's round
 * trips). With it, the download keeps going while the sender is busy, up to
 * `maxBytes` held: memory stays bounded whatever the instance or series size,
 * and a consumer slower than the archive simply stops the reads
 * (backpressure down to the socket).
 */

export interface ReadAheadOptions {
  /** Most bytes held that the consumer has not taken yet (at least one chunk is always read). */
  maxBytes: number;
  /**
   * Called by `return()` before the source is closed: stops a read that is
   * under way (an async generator cannot be returned while its `next()` is
   * pending, so the request itself must be aborted).
   */
  abort?: () => void;
}

/** The source's chunks, read ahead of the consumer by up to `maxBytes`. Single consumer; `return()` stops the source. */
export function readAhead(source: AsyncIterator<Uint8Array>, options: ReadAheadOptions): AsyncIterableIterator<Uint8Array> {
  const queue: Uint8Array[] = [];
  let head = 0;
  let queued = 0;
  let ended = false;
  let stopped = false;
  let failure: { error: unknown } | undefined;
  let pumping: Promise<void> | undefined;
  let wake: (() => void) | undefined;

  const notify = (): void => {
    const w = wake;
    wake = undefined;
    w?.();
  };

  const pump = async (): Promise<void> => {
    try {
      while (!ended && !stopped && queued < options.maxBytes) {
        const r = await source.next();
        if (stopped) return;
        if (r.done) ended = true;
        else if (r.value.length > 0) {
          queue.push(r.value);
          queued += r.value.length;
        }
        notify();
      }
    } catch (error) {
      if (!stopped) failure = { error };
      notify();
    } finally {
      pumping = undefined;
    }
  };

  const refill = (): void => {
    if (!pumping && !ended && !stopped && !failure && queued < options.maxBytes) pumping = pump();
  };

  const iterator: AsyncIterableIterator<Uint8Array> = {
    [Symbol.asyncIterator]() {
      return iterator;
    },
    async next(): Promise<IteratorResult<Uint8Array>> {
      for (;;) {
        if (stopped) return { done: true, value: undefined };
        if (head < queue.length) {
          const chunk = queue[head]!;
          queue[head++] = EMPTY;
          // Compact now and then: the array does not grow with the download.
          if (head > 1024 && head * 2 > queue.length) {
            queue.splice(0, head);
            head = 0;
          }
          queued -= chunk.length;
          refill();
          return { done: false, value: chunk };
        }
        // Buffered chunks first, then the error where it happened.
        if (failure) throw failure.error;
        if (ended) return { done: true, value: undefined };
        const woken = new Promise<void>((resolve) => (wake = resolve));
        refill();
        await woken;
      }
    },
    async return(): Promise<IteratorResult<Uint8Array>> {
      if (!stopped) {
        stopped = true;
        queue.length = 0;
        head = 0;
        queued = 0;
        notify();
        if (!ended) {
          options.abort?.();
          // The pump's pending read settles (aborted) before the source can be closed.
          await pumping?.catch(() => undefined);
          await source.return?.().catch(() => undefined);
        }
      }
      return { done: true, value: undefined };
    },
  };
  return iterator;
}

const EMPTY = new Uint8Array(0);
