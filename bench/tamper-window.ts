import { abortableDelay } from '../lib/timing/abortable-delay.js';

/**
 * The tampering of `npm run bench -- verifier`, shared by its pull and push windows so that both
 * modes are measured with the same share of nodes tampered at the same points of the window.
 */

/** Nodes tampered in a window of `agents`: `--tamper N`, else 5 % of the fleet (1 to 50). */
export function tamperCount(agents: number, requested: number | undefined): number {
  return requested ?? Math.min(50, Math.max(1, Math.round(agents * 0.05)));
}

/**
 * Tampers `count` random agents at random times in the first 60% of the window; resolves to agent → time.
 * Tampers no more once `signal` aborts (the benchmark was interrupted).
 */
export async function tamperDuringWindow(
  agents: readonly { uuid: string; tamper(): Promise<number> }[],
  count: number,
  from: number,
  seconds: number,
  signal: AbortSignal,
): Promise<Map<string, number>> {
  const chosen = [...agents].sort(() => Math.random() - 0.5).slice(0, Math.min(count, agents.length));
  const tampered = new Map<string, number>();
  const plan = chosen.map((agent) => ({ agent, at: from + (0.1 + 0.5 * Math.random()) * seconds * 1000 }));
  plan.sort((a, b) => a.at - b.at);
  void (async () => {
    for (const { agent, at } of plan) {
      await abortableDelay(at - Date.now(), signal);
      tampered.set(agent.uuid, await agent.tamper());
    }
  })().catch((error: unknown) => {
    if (!signal.aborted) process.stderr.write(`tampering stopped: ${String(error)}\n`);
  });
  return tampered;
}
