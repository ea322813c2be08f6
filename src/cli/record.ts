/*
 * One stdin line -> one LogEntry, by the record mapping the pino and winston adapters use (the
 * CLI's input is NDJSON from any logger). The line itself always goes to Loki as it was read;
 * parsing only decides its timestamp, its level label and any lifted labels or metadata. A line
 * that is not a JSON object is shipped as plain text, never dropped for its shape.
 */
import { levelTable } from '../records/levels.js'
import { RecordMapper, resolveMapping } from '../records/mapping.js'
import type { LogEntry } from '../model/types.js'

export type InputFormat = 'auto' | 'text'

export interface LineMapperOptions {
  /** `auto`: JSON objects (pino, bunyan, winston) are read; `text`: every line is plain text. */
  format: InputFormat
  /** Record fields lifted into stream labels (`--json-labels`). */
  jsonLabels: readonly string[]
  /** Record fields sent as structured metadata (`--json-metadata`). */
  jsonMetadata: readonly string[]
}

/** pino's times, then the names other loggers (winston, bunyan's ISO, Elastic's) use. */
const TIME_KEYS = ['time', 'timestamp', '@timestamp'] as const
/** pino's level numbers; bunyan uses the same. */
const LEVELS: ReadonlyMap<number, string> = levelTable(undefined, 'levels')

/**
 * Throws LokiOptionError (`labelsFrom`, `metadataFrom`) for field lists the adapters would refuse
 * too; the CLI reports it under the flag's name.
 */
export function createLineMapper(options: LineMapperOptions): (line: string) => LogEntry {
  const mapping = resolveMapping({ labelsFrom: options.jsonLabels, metadataFrom: options.jsonMetadata })
  const mapper = new RecordMapper(mapping, { timeKeys: TIME_KEYS, messageKey: 'msg', levels: LEVELS })
  return options.format === 'text' ? (line) => mapper.mapText(line) : (line) => mapper.mapLine(line)
}
