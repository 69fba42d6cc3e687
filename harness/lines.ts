import { createInterface } from "node:readline";

/** Calls `onLine` with each whole line of the streams (a pipe may cut a line between two chunks). */
export function onLines(streams: Array<NodeJS.ReadableStream | null | undefined>, onLine: (line: string) => void): void {
  for (const input of streams) if (input) createInterface({ input, crlfDelay: Infinity }).on("line", onLine);
}

/** Keeps the last non-blank lines a process wrote (bounded), to explain a failure; `skip` lines are counted, not kept. */
export class LogTail {
  readonly lines: string[] = [];
  count = 0;
  suppressed = 0;
  constructor(
    private readonly max = 200,
    private readonly skip?: RegExp,
  ) {}

  attach(...streams: Array<NodeJS.ReadableStream | null | undefined>): this {
    onLines(streams, (line) => this.push(line));
    return this;
  }

  private push(line: string): void {
    if (!line.trim()) return;
    if (this.skip?.test(line)) {
      this.suppressed++;
      return;
    }
    this.count++;
    this.lines.push(line.length > 600 ? `${line.slice(0, 600)}…` : line);
    if (this.lines.length > this.max) this.lines.shift();
  }
}
