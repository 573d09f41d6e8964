// `npm run gen:proto`: writes the CRI proto as protobufjs's JSON (its parsed form), which the daemon
// loads at start-up instead of parsing the .proto (src/cri/proto.ts, loadCriRoot: half the time,
// and none of it in the tokenizer's hot loops). Usage: node scripts/gen-proto-json.mjs PROTO OUT
import { writeFileSync } from 'node:fs';
import protobuf from 'protobufjs';

const [proto, out] = process.argv.slice(2);
if (!proto || !out) throw new Error('usage: gen-proto-json.mjs PROTO OUT');
// keepCase: field names as the proto spells them, as src/cri/proto.ts parses it (a unit test
// compares the two).
writeFileSync(out, JSON.stringify(new protobuf.Root().loadSync(proto, { keepCase: true }).toJSON()));
