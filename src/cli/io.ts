/** The streams and environment a command uses: passed in, not read from `process`, so a command can run against others. */
export interface CliIO {
  stdin: NodeJS.ReadStream
  stdout: NodeJS.WriteStream
  stderr: NodeJS.WriteStream
  env: Readonly<Record<string, string | undefined>>
}
