// A small SMSC on node-smpp for tests/integration/test_smpp_peers.py (ESME client mode).
//
// usage: node smsc.js PORT SYSTEM_ID PASSWORD MSISDN TEXT1 [TEXT2 ...]
// For the n-th successful bind it sends TEXTn as an MO (deliver_sm) from MSISDN to 1555,
// answers the submit_sm reply, then drops the connection (so the ESME must re-bind)
// unless it was the last text.  Prints one JSON line per event; exits after the last
// reply or after 30 s.
'use strict';
const smpp = require('smpp');

const [port, systemId, password, msisdn, ...texts] = process.argv.slice(2);
let binds = 0;
let replies = 0;
const emit = (event) => process.stdout.write(JSON.stringify(event) + '\n');

const server = smpp.createServer({}, (session) => {
  session.socket.setNoDelay(true);
  const onBind = (pdu) => {
    if (pdu.system_id !== systemId || pdu.password !== password) {
      emit({ event: 'bind_refused', system_id: pdu.system_id });
      session.send(pdu.response({ command_status: smpp.ESME_RINVPASWD }));
      return;
    }
    session.send(pdu.response({ system_id: 'node-smsc' }));
    const text = texts[binds];
    binds += 1;
    emit({ event: 'bind', command: pdu.command, n: binds });
    session.deliver_sm({
      source_addr: msisdn, source_addr_ton: 1, source_addr_npi: 1,
      destination_addr: '1555', short_message: text,
    }, (resp) => emit({ event: 'deliver_sm_resp', status: resp.command_status }));
  };
  session.on('bind_transceiver', onBind);
  session.on('bind_transmitter', onBind);
  session.on('bind_receiver', onBind);
  session.on('enquire_link', (pdu) => session.send(pdu.response()));
  let parts = [];
  session.on('submit_sm', (pdu) => {
    session.send(pdu.response({ message_id: 'node-' + Date.now() }));
    const sm = pdu.short_message || {};
    const text = typeof sm === 'string' ? sm : (sm.message || '');
    let seq = 1;
    let total = 1;
    for (const el of (sm.udh || [])) {
      if (el[0] === 0x00 && el.length >= 5) { total = el[3]; seq = el[4]; }
    }
    parts[seq - 1] = text;
    emit({
      event: 'submit_sm', seq, total, to: pdu.destination_addr, from: pdu.source_addr,
      data_coding: pdu.data_coding, esm_class: pdu.esm_class,
    });
    if (parts.filter((p) => p !== undefined).length < total) return;
    replies += 1;
    emit({ event: 'reply', n: replies, text: parts.join(''), parts: total,
           data_coding: pdu.data_coding, to: pdu.destination_addr, from: pdu.source_addr });
    parts = [];
    if (replies >= texts.length) {
      setTimeout(() => process.exit(0), 200);
    } else {
      setTimeout(() => session.close(), 50);   // make the ESME re-bind
    }
  });
  session.on('unbind', (pdu) => { session.send(pdu.response()); session.close(); });
  session.on('error', (err) => emit({ event: 'error', message: String(err) }));
});

server.listen(Number(port), '127.0.0.1', () => emit({ event: 'listening', port: Number(port) }));
setTimeout(() => { emit({ event: 'timeout' }); process.exit(2); }, 30000);
