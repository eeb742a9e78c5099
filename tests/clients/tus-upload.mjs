// Uploads FILE to a tus ENDPOINT with tus-js-client (the library Uppy's tus
// plugin wraps), as reel's tus integration tests do.
// Usage: node tus-upload.mjs FILE ENDPOINT [--parallel N] [--chunk-size BYTES]
// The API key is read from the REEL_API_KEY environment variable, so it
// never appears in a process listing. Prints {"url": …} on success; exits 1
// with the error on stderr otherwise.
import fs from 'node:fs'
import path from 'node:path'
import * as tus from 'tus-js-client'

const [file, endpoint, ...rest] = process.argv.slice(2)
if (!file || !endpoint) {
  console.error('usage: node tus-upload.mjs FILE ENDPOINT [--parallel N] [--chunk-size BYTES]')
  process.exit(2)
}
const key = process.env.REEL_API_KEY
if (!key) {
  console.error('REEL_API_KEY is not set')
  process.exit(2)
}
let parallelUploads = 1
let chunkSize = Infinity
for (let i = 0; i < rest.length; i += 2) {
  if (rest[i] === '--parallel') parallelUploads = Number(rest[i + 1])
  else if (rest[i] === '--chunk-size') chunkSize = Number(rest[i + 1])
  else {
    console.error(`unknown option ${rest[i]}`)
    process.exit(2)
  }
}

const upload = new tus.Upload(fs.createReadStream(file), {
  endpoint,
  headers: { Authorization: `Bearer ${key}` },
  chunkSize,
  parallelUploads,
  retryDelays: [0, 500, 1000],
  metadata: { filename: path.basename(file), filetype: 'application/octet-stream' },
  onError(error) {
    console.error(`tus-js-client: ${error}`)
    process.exitCode = 1
  },
  onSuccess() {
    console.log(JSON.stringify({ url: upload.url }))
  },
})
upload.start()
