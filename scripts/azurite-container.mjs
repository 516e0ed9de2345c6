// Creates a blob container in Azurite with a SharedKey-signed REST call (object_store cannot
// create containers). Usage: node azurite-container.mjs NAME [PORT]. 201 created, 409 exists.
import crypto from 'node:crypto';
import http from 'node:http';

const account = 'devstoreaccount1';
const key = 'Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==';
const name = process.argv[2] || 'footage-test';
const port = Number(process.argv[3] || 10000);
const date = new Date().toUTCString();
const version = '2021-08-06';
const toSign = [
  'PUT', '', '', '', '', '', '', '', '', '', '', '',
  `x-ms-date:${date}\nx-ms-version:${version}`,
  `/${account}/${account}/${name}\nrestype:container`,
].join('\n');
const sig = crypto.createHmac('sha256', Buffer.from(key, 'base64')).update(toSign, 'utf8').digest('base64');
const req = http.request({
  host: '127.0.0.1', port, method: 'PUT', path: `/${account}/${name}?restype=container`,
  headers: { 'x-ms-date': date, 'x-ms-version': version, 'Content-Length': 0,
             Authorization: `SharedKey ${account}:${sig}` },
}, (res) => {
  res.resume();
  if (res.statusCode === 201 || res.statusCode === 409) {
    console.log(`container ${name}: ${res.statusCode}`);
  } else {
    console.error(`creating container ${name} failed: HTTP ${res.statusCode}`);
    process.exit(1);
  }
});
req.on('error', (e) => { console.error(`Azurite not reachable: ${e.message}`); process.exit(1); });
req.end();
