// An SMSC on node-smpp that behaves as a real one does toward an ESME that may die
// (tests/integration/test_chaos_esme.py): it delivers each MO with deliver_sm until the
// ESME acknowledges it with deliver_sm_resp ESME_ROK.  An MO refused with an error, or
// in flight when the bind broke, is queued again and resent on the next bind.
//
// usage: node smsc_resend.js PORT SYSTEM_ID PASSWORD MOFILE RATE WINDOW
// MOFILE is a JSON array of {"msisdn": ..., "text": ...}.  At most RATE MOs per second
// are sent and at most WINDOW await their response per bind.  Every submit_sm (an MT
// reply) is answered ESME_ROK.  One JSON line per event on stdout:
//   {"event": "listening"} {"event": "bind"} {"event": "sent", "i": n}
//   {"event": "ack", "i": n, "status": s} {"event": "lost", "i": n}
//   {"event": "reply", "to": msisdn, "text": ...} {"event": "done"} (every MO acknowledged)
// Exits on SIGTERM or after 300 s.
'use strict';
const fs = require('fs');
const smpp = require('smpp');

const [port, systemId, password, moFile, rate, windowArg] = process.argv.slice(2);
const mos = JSON.parse(fs.readFileSync(moFile, 'utf8'));
const perTick = Math.max(1, Number(rate) / 50);       // ticks of 20 ms
const window = Number(windowArg);
const queue = mos.map((_, i) => i);
const acked = new Set();
const sessions = new Map();                           // session -> Set of MO indices in flight
let credit = 0;
let done = false;
const emit = (event) => process.stdout.write(JSON.stringify(event) + '\n');

function deliver(session, inflight, i) {
  inflight.add(i);
  emit({ event: 'sent', i });
  session.deliver_sm({
    source_addr: mos[i].msisdn, source_addr_ton: 1, source_addr_npi: 1,
    destination_addr: '1555', short_message: mos[i].text,
  }, (resp) => {
    if (!inflight.delete(i)) return;                  // the bind already broke: requeued
    emit({ event: 'ack', i, status: resp.command_status });
    if (resp.command_status === 0) {
      acked.add(i);
      if (acked.size === mos.length && !done) { done = true; emit({ event: 'done' }); }
    } else {
      queue.push(i);                                  // refused for now: send it again
    }
  });
}

setInterval(() => {
  credit = Math.min(credit + perTick, perTick * 5);
  for (const [session, inflight] of sessions) {
    while (credit >= 1 && queue.length && inflight.size < window) {
      credit -= 1;
      deliver(session, inflight, queue.shift());
    }
  }
}, 20);

const server = smpp.createServer({}, (session) => {
  session.socket.setNoDelay(true);
  const inflight = new Set();
  const onBind = (pdu) => {
    if (pdu.system_id !== systemId || pdu.password !== password) {
      session.send(pdu.response({ command_status: smpp.ESME_RINVPASWD }));
      return;
    }
    session.send(pdu.response({ system_id: 'resend-smsc' }));
    sessions.set(session, inflight);
    emit({ event: 'bind', command: pdu.command });
  };
  session.on('bind_transceiver', onBind);
  session.on('enquire_link', (pdu) => session.send(pdu.response()));
  session.on('submit_sm', (pdu) => {
    session.send(pdu.response({ message_id: 'r-' + Date.now() }));
    const sm = pdu.short_message || {};
    emit({ event: 'reply', to: pdu.destination_addr,
           text: typeof sm === 'string' ? sm : (sm.message || '') });
  });
  session.on('unbind', (pdu) => { session.send(pdu.response()); session.close(); });
  session.on('error', () => {});
  session.on('close', () => {
    sessions.delete(session);
    for (const i of inflight) { emit({ event: 'lost', i }); queue.unshift(i); }
    inflight.clear();
  });
});

server.listen(Number(port), '127.0.0.1', () => emit({ event: 'listening' }));
process.on('SIGTERM', () => process.exit(0));
setTimeout(() => process.exit(2), 300000);
