// The CLI reads stdin with the splitter every NDJSON reader shares.
export { LineSplitter } from '../ndjson.js'
