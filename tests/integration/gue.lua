-- A tshark dissector for GUE (draft-ietf-intarea-gue), which Wireshark
-- 4.0 does not know: the 4-byte variant 0 header with no optional fields
-- that fulcrum sends, then the carried packet handed to tshark's own
-- dissector for that IP protocol. Anything else is marked malformed, so
-- that a wrong header fails the test instead of decoding by luck.
--   tshark -X lua_script:gue.lua -X lua_script1:PORT ...
local port = tonumber((...)) or 6080
local gue = Proto("gue", "Generic UDP Encapsulation")
local f_version = ProtoField.uint8("gue.version", "Version", base.DEC, nil, 0xc0)
local f_control = ProtoField.uint8("gue.control", "Control", base.DEC, nil, 0x20)
local f_hlen = ProtoField.uint8("gue.hlen", "Optional fields (words)", base.DEC, nil, 0x1f)
local f_proto = ProtoField.uint8("gue.proto", "Protocol", base.DEC)
local f_flags = ProtoField.uint16("gue.flags", "Flags", base.HEX)
local f_valid = ProtoField.bool("gue.valid", "Variant 0 header, no options")
gue.fields = { f_version, f_control, f_hlen, f_proto, f_flags, f_valid }
local ip_proto = DissectorTable.get("ip.proto")

function gue.dissector(tvb, pinfo, tree)
    if tvb:len() < 4 then
        return 0
    end
    local t = tree:add(gue, tvb(0, 4))
    local first = tvb(0, 1):uint()
    t:add(f_version, tvb(0, 1))
    t:add(f_control, tvb(0, 1))
    t:add(f_hlen, tvb(0, 1))
    t:add(f_proto, tvb(1, 1))
    t:add(f_flags, tvb(2, 2))
    local valid = first == 0 and tvb(2, 2):uint() == 0
    t:add(f_valid, valid)
    pinfo.cols.protocol = "GUE"
    if valid and tvb:len() > 4 then
        ip_proto:try(tvb(1, 1):uint(), tvb(4):tvb(), pinfo, tree)
    end
    return tvb:len()
end

DissectorTable.get("udp.port"):add(port, gue)
