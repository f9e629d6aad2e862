"""Hand-checked SMPP 3.4 PDU hex vectors with the objects they decode to (SMPP v3.4 issue 1.2 §4).

Each vector is written field by field with a comment, so it can be checked
against the spec tables without running any code; the tests assert that
command_length matches the byte count, that each decodes to its object
and that the object encodes back to the same bytes.
"""

from __future__ import annotations

from dataclasses import dataclass

from protocols.smpp.codec import (
    BindReceiver, BindReceiverResp, BindTransceiver, BindTransceiverResp, BindTransmitter,
    BindTransmitterResp, DataSm, DataSmResp, DeliverSm, DeliverSmResp,
    EnquireLink, EnquireLinkResp, GenericNack, Outbind, Pdu, SubmitSm,
    SubmitSmResp, Tlv, Unbind, UnbindResp, tlvs)


def hexdump(text: str) -> bytes:
    """Bytes from annotated hex: per line, what precedes a '#' is hex."""
    return bytes.fromhex("".join(line.split("#", 1)[0] for line in text.splitlines()))


@dataclass(frozen=True)
class Vector:
    name: str
    wire: bytes
    pdu: Pdu


VECTORS = [
    Vector("enquire_link", hexdump("""
        00000010  # command_length 16
        00000015  # command_id enquire_link
        00000000  # command_status ESME_ROK
        00000001  # sequence_number 1
    """), EnquireLink(sequence_number=1)),

    Vector("enquire_link_resp", hexdump("""
        00000010 80000015 00000000 00000001
    """), EnquireLinkResp(sequence_number=1)),

    Vector("unbind", hexdump("""
        00000010 00000006 00000000 00000009
    """), Unbind(sequence_number=9)),

    Vector("unbind_resp", hexdump("""
        00000010 80000006 00000000 00000009
    """), UnbindResp(sequence_number=9)),

    Vector("generic_nack RINVCMDID", hexdump("""
        00000010 80000000
        00000003  # ESME_RINVCMDID
        0000000a
    """), GenericNack(sequence_number=10, command_status=3)),

    Vector("bind_transceiver", hexdump("""
        00000025  # command_length 37 = 16 + 21
        00000009  # bind_transceiver
        00000000 00000001
        69766f6d7300      # system_id "ivoms"
        73656372657400    # password "secret"
        564d5300          # system_type "VMS"
        34                # interface_version 3.4
        01 01             # addr_ton international, addr_npi ISDN
        00                # address_range ""
    """), BindTransceiver(sequence_number=1, system_id="ivoms", password="secret",
                          system_type="VMS", addr_ton=1, addr_npi=1)),

    Vector("bind_transmitter with full-length fields", hexdump("""
        00000041  # 65 = 16 + 49
        00000002 00000000 00000002
        69766f6d732d676174657761792d31 00   # system_id "ivoms-gateway-1" (15, the max)
        7034737377307264 00                 # password "p4ssw0rd" (8, the max)
        564f5543484552532d535953 00         # system_type "VOUCHERS-SYS" (12, the max)
        34 01 01                            # interface_version, addr_ton, addr_npi
        5e323334383033 00                   # address_range "^234803"
    """), BindTransmitter(sequence_number=2, system_id="ivoms-gateway-1", password="p4ssw0rd",
                          system_type="VOUCHERS-SYS", addr_ton=1, addr_npi=1,
                          address_range="^234803")),

    Vector("bind_receiver", hexdump("""
        0000001d  # 29 = 16 + 13
        00000001 00000000 00000003
        6573 6d65 00      # system_id "esme"
        7077 00           # password "pw"
        00                # system_type ""
        33 00 00          # interface_version 3.3
        00                # address_range ""
    """), BindReceiver(sequence_number=3, system_id="esme", password="pw",
                       interface_version=0x33)),

    Vector("bind_transceiver_resp with sc_interface_version", hexdump("""
        0000001a  # 26 = 16 + 5 + 5
        80000009 00000000 00000001
        534d534300        # system_id "SMSC"
        0210 0001 34      # TLV sc_interface_version = 0x34
    """), BindTransceiverResp(sequence_number=1, system_id="SMSC",
                              optional=tlvs(sc_interface_version=0x34))),

    Vector("bind_receiver_resp without TLV", hexdump("""
        00000015  # 21 = 16 + 5
        80000001 00000000 00000003
        534d534300        # system_id "SMSC"
    """), BindReceiverResp(sequence_number=3, system_id="SMSC")),

    Vector("bind_transmitter_resp RINVPASWD, no body", hexdump("""
        00000010 80000002
        0000000e  # ESME_RINVPASWD
        00000002
    """), BindTransmitterResp(sequence_number=2, command_status=0x0E)),

    Vector("outbind", hexdump("""
        0000001b  # 27 = 16 + 5 + 6
        0000000b 00000000 00000007
        534d534300        # system_id "SMSC"
        70617373 3100     # password "pass1"
    """), Outbind(sequence_number=7, system_id="SMSC", password="pass1")),

    Vector("submit_sm GSM with euro escape", hexdump("""
        00000043  # 67 = 16 + 51
        00000004 00000000 00000073
        00                          # service_type ""
        05 00 49564f4d5300          # source alphanumeric "IVOMS"
        01 01 3233343830333030303030303100  # dest intl/ISDN "2348030000001"
        00 00 00                    # esm_class, protocol_id, priority_flag
        00 00                       # schedule_delivery_time "", validity_period ""
        01 00 00 00                 # registered_delivery, replace, data_coding 0, default_msg_id
        10                          # sm_length 16
        43726564697420351b652061646465 64  # "Credit 5€ added" (1B 65 = €)
    """), SubmitSm(sequence_number=0x73, source_addr_ton=5, source_addr="IVOMS",
                   dest_addr_ton=1, dest_addr_npi=1, destination_addr="2348030000001",
                   registered_delivery=1,
                   short_message=bytes.fromhex("43726564697420351b65206164646564"))),

    Vector("submit_sm with times and TLVs", hexdump("""
        0000006a  # 106 = 16 + 90
        00000004 00000000 00000074
        434d5400                    # service_type "CMT"
        00 00 35353500              # source "555"
        01 01 3233343830333030303030303100  # dest "2348030000001"
        00 00 01                    # esm_class, protocol_id, priority_flag 1
        3235303130313132303030303030302b00  # schedule "250101120000000+"
        3030303030323030303030303030305200  # validity relative "000002000000000R"
        00 00 08 00                 # data_coding UCS-2
        04 0041 00e9                # sm_length 4, "Aé" in UCS-2
        0204 0002 0102              # user_message_reference 0x0102
        020a 0002 0b54              # source_port 2900
        020b 0002 0b55              # destination_port 2901
    """), SubmitSm(sequence_number=0x74, service_type="CMT", source_addr="555",
                   dest_addr_ton=1, dest_addr_npi=1, destination_addr="2348030000001",
                   priority_flag=1, schedule_delivery_time="250101120000000+",
                   validity_period="000002000000000R", data_coding=8,
                   short_message=bytes.fromhex("004100e9"),
                   optional=tlvs(user_message_reference=0x0102, source_port=2900,
                                 destination_port=2901))),

    Vector("submit_sm_resp", hexdump("""
        00000017  # 23 = 16 + 7
        80000004 00000000 00000073
        61316232633300    # message_id "a1b2c3"
    """), SubmitSmResp(sequence_number=0x73, message_id="a1b2c3")),

    Vector("submit_sm_resp RTHROTTLED, no body", hexdump("""
        00000010 80000004
        00000058  # ESME_RTHROTTLED
        00000074
    """), SubmitSmResp(sequence_number=0x74, command_status=0x58)),

    Vector("deliver_sm MO, UCS-2 part 1 of 2 with UDH", hexdump("""
        00000043  # 67 = 16 + 51
        00000005 00000000 0000002a
        00                                   # service_type ""
        01 01 3233343830333030303030303100   # source "2348030000001"
        00 00 35353500                       # destination "555"
        40 00 00                             # esm_class UDHI
        00 00                                # no times
        00 00 08 00                          # data_coding UCS-2
        12                                   # sm_length 18
        050003 2a 02 01                      # UDH: concat 8-bit ref 0x2a, 2 parts, part 1
        041f 0440 0438 0432 0435 0442        # "Привет"
    """), DeliverSm(sequence_number=0x2A, source_addr_ton=1, source_addr_npi=1,
                    source_addr="2348030000001", destination_addr="555",
                    esm_class=0x40, data_coding=8,
                    short_message=bytes.fromhex("0500032a0201041f04400438043204350442"))),

    Vector("deliver_sm delivery receipt", hexdump("""
        00000060  # 96 = 16 + 80
        00000005 00000000 0000002b
        00
        01 01 3233343830333030303030303100   # source "2348030000001"
        05 00 49564f4d5300                   # destination "IVOMS"
        04 00 00                             # esm_class: SMSC delivery receipt
        00 00 00 00 00 00
        16                                   # sm_length 22
        69643a613162326333 20 737461743a44454c49565244  # "id:a1b2c3 stat:DELIVRD"
        001e 0007 61316232633300             # receipted_message_id "a1b2c3"
        0427 0001 02                         # message_state DELIVERED
        0423 0003 030000                     # network_error_code GSM, 0
    """), DeliverSm(sequence_number=0x2B, source_addr_ton=1, source_addr_npi=1,
                    source_addr="2348030000001", dest_addr_ton=5, destination_addr="IVOMS",
                    esm_class=0x04, short_message=b"id:a1b2c3 stat:DELIVRD",
                    optional=tlvs(receipted_message_id="a1b2c3", message_state=2,
                                  network_error_code=b"\x03\x00\x00"))),

    Vector("deliver_sm_resp", hexdump("""
        00000011 80000005 00000000 0000002a
        00                # message_id "" (unused)
    """), DeliverSmResp(sequence_number=0x2A)),

    Vector("data_sm USSD with SAR, payload and a vendor TLV", hexdump("""
        0000005e  # 94 = 16 + 78
        00000103 00000000 00000050
        5553534400                           # service_type "USSD"
        01 01 3233343830333030303030303100   # source "2348030000001"
        00 00 35353500                       # destination "555"
        00 00 00                             # esm_class, registered_delivery, data_coding
        020c 0002 1234                       # sar_msg_ref_num 0x1234
        020e 0001 02                         # sar_total_segments 2
        020f 0001 01                         # sar_segment_seqnum 1
        0424 0005 2a31323323                 # message_payload "*123#"
        1383 0002 0100                       # its_session_info: session 1, seq 0
        0501 0001 01                         # ussd_service_op 1 (PSSR indication)
        0426 0001 01                         # more_messages_to_send 1
        1400 0003 010203                     # vendor-specific tag 0x1400, kept raw
    """), DataSm(sequence_number=0x50, service_type="USSD", source_addr_ton=1,
                 source_addr_npi=1, source_addr="2348030000001", destination_addr="555",
                 optional=tlvs(sar_msg_ref_num=0x1234, sar_total_segments=2,
                               sar_segment_seqnum=1, message_payload=b"*123#",
                               its_session_info=b"\x01\x00", ussd_service_op=1,
                               more_messages_to_send=1)
                 + (Tlv(0x1400, b"\x01\x02\x03"),))),

    Vector("data_sm_resp", hexdump("""
        00000014 80000103 00000000 00000050
        6d2d3100          # message_id "m-1"
    """), DataSmResp(sequence_number=0x50, message_id="m-1")),
]
