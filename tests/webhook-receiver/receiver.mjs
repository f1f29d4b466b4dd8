// An integration's webhook endpoint for the tests: `node receiver.mjs <port> <secret> <file>`.
// Verifies each delivery with the standardwebhooks package and appends one JSON line per
// request to <file> ({path, id, verified, payload}): the file outlives a restart, so a test
// can stop the receiver (connections refused) and start it again on the same port. Answers
// 200 to a verified delivery and 401 to one that does not verify. Prints {"port": N} once
// listening.
import { appendFileSync } from 'node:fs';
import http from 'node:http';
import { Webhook } from 'standardwebhooks';

const [port, secret, file] = process.argv.slice(2);
const webhook = new Webhook(secret);

const server = http.createServer((request, response) => {
  const chunks = [];
  request.on('data', (chunk) => chunks.push(chunk));
  request.on('end', () => {
    const body = Buffer.concat(chunks).toString('utf8');
    const line = { path: request.url, id: request.headers['webhook-id'] ?? null, verified: false };
    try {
      line.payload = webhook.verify(body, request.headers);
      line.verified = true;
    } catch (error) {
      line.error = String(error);
    }
    appendFileSync(file, JSON.stringify(line) + '\n');
    response.writeHead(line.verified ? 200 : 401, { 'content-type': 'text/plain' });
    response.end(line.verified ? 'received' : 'bad signature');
  });
});
server.listen(Number(port), '127.0.0.1', () => {
  console.log(JSON.stringify({ port: server.address().port }));
});
