// Cold start: what loading a logging library costs a process that has not loaded it yet, measured
// as whole processes. Each case is `node -e` with the same reporter and one import, so a bare
// `node` running only the reporter is the baseline and the difference is the import alone.
//
// Wall is taken by the parent, from spawn() to the child's exit, because the child's own clock
// starts after exec and Node's bootstrap, which is part of what an import can make slower. Peak
// RSS is the child's getrusage maxRSS read in its 'exit' handler (the figure `/usr/bin/time -f
// %M` prints, without a third process in between), the same way for the bare process.
import { fileURLToPath } from 'node:url'

/**
 * Writes `@@bench {"maxRssKB":…,"cpuUs":…}` at exit, synchronously, so the pipe cannot lose it.
 * CPU (every thread, user and system) is shown beside wall: a busy machine stretches wall far
 * more than it stretches the work done.
 */
const REPORTER =
  'process.on("exit",()=>{const u=process.resourceUsage();require("node:fs").writeSync(1,"@@bench "+JSON.stringify({event:"coldstart",maxRssKB:u.maxRSS,cpuUs:u.userCPUTime+u.systemCPUTime})+"\\n")});'

/**
 * The processes measured. `bare` is the baseline every other case is set against; `target` marks
 * the one the issue sets a budget for.
 */
export const COLDSTART_CASES = [
  { id: 'bare', label: 'bare `node`', code: '' },
  { id: 'lokiwire-esm', label: "`import('lokiwire')`", code: "import('lokiwire')", family: 'lokiwire', target: true },
  { id: 'lokiwire-cjs', label: "`require('lokiwire')`", code: "require('lokiwire')", family: 'lokiwire' },
  { id: 'lokiwire-pino', label: "`import('lokiwire/pino')`", code: "import('lokiwire/pino')", family: 'lokiwire' },
  { id: 'pino-loki', label: "`import('pino-loki')`", code: "import('pino-loki')", family: 'pino-loki' },
  { id: 'winston-loki', label: "`import('winston-loki')`", code: "import('winston-loki')", family: 'winston-loki' },
]

/** The `node` arguments of one case; the import's promise keeps the process until it settles. */
export function coldstartArgs(c) {
  return ['-e', `${REPORTER}${c.code}`]
}

/** The first batches after import, in their own process: see first-send.mjs. */
export const FIRST_SEND_SCRIPT = fileURLToPath(new URL('./first-send.mjs', import.meta.url))
/** Lines per batch of the first-send process; it sends two batches. */
export const FIRST_SEND_LINES = 100

/**
 * Rounds of every case in turn, the order rotated each round so that no case always follows
 * the same one: drift on the machine lands on the baseline and the imports alike.
 */
export function coldstartOrder(cases, runs) {
  const order = []
  for (let r = 0; r < runs; r++) {
    for (let k = 0; k < cases.length; k++) order.push({ run: r + 1, case: cases[(k + r) % cases.length] })
  }
  return order
}
