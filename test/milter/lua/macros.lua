-- Macros: the sample milter is sent the macros Postfix sends at each stage, interleaved with the
-- steps, and must go on answering in step. Its only macro-independent output is
-- `X-Sample-Milter: <client ip>`, whose address must come from the connection information, not
-- from the {client_addr} macro (set here to a different address).
dofile((lua_dir or "test/milter/lua") .. "/common.lua")

run(function()
  local conn = open()

  mt.macro(conn, SMFIC_CONNECT, "j", "mx.example.org", "{daemon_name}", "mx.example.org",
    "{daemon_addr}", "198.51.100.1", "{client_addr}", "203.0.113.99", "{client_name}",
    "unknown", "_", "unknown [203.0.113.99]", "v", "Postfix 3.7.11")
  step("conninfo", SMFIR_CONTINUE, mt.conninfo, conn, CLIENT_HOST, CLIENT_IP)

  mt.macro(conn, SMFIC_HELO, "{tls_version}", "TLSv1.3", "{cipher}", "TLS_AES_256_GCM_SHA384",
    "{cipher_bits}", "256", "{cert_subject}", "", "{cert_issuer}", "")
  step("helo", SMFIR_CONTINUE, mt.helo, conn, "mail.client.example.net")

  for round = 1, 2 do
    mt.macro(conn, SMFIC_MAIL, "i", "4ABC" .. round .. "DEF", "{auth_type}", "PLAIN",
      "{auth_authen}", "jo", "{auth_author}", "", "{mail_mailer}", "smtp",
      "{mail_host}", "client.example.net", "{mail_addr}", "sender@client.example.net")
    step("mailfrom " .. round, SMFIR_CONTINUE, mt.mailfrom, conn, "<sender@client.example.net>",
      "SIZE=1234", "BODY=8BITMIME")

    mt.macro(conn, SMFIC_RCPT, "{rcpt_mailer}", "local", "{rcpt_host}", "",
      "{rcpt_addr}", "someone@example.org")
    step("rcptto " .. round, SMFIR_CONTINUE, mt.rcptto, conn, "<someone@example.org>")
    mt.macro(conn, SMFIC_RCPT, "{rcpt_mailer}", "local", "{rcpt_host}", "",
      "{rcpt_addr}", "other@example.org")
    step("rcptto " .. round .. " (second)", SMFIR_CONTINUE, mt.rcptto, conn, "<other@example.org>")

    step("data", SMFIR_CONTINUE, mt.data, conn)
    step("header", SMFIR_CONTINUE, mt.header, conn, "Subject", "macros " .. round)
    step("eoh", SMFIR_CONTINUE, mt.eoh, conn)
    step("body", SMFIR_CONTINUE, mt.bodystring, conn, "Hello.\r\n")
    end_message(conn)

    check(mt.eom_check(conn, MT_HDRADD, "X-Sample-Milter", CLIENT_IP),
      "round " .. round .. ": X-Sample-Milter is not the address from the connection information")
    check(not mt.eom_check(conn, MT_HDRADD, "X-Sample-Milter", "203.0.113.99"),
      "round " .. round .. ": X-Sample-Milter took the {client_addr} macro, not the connect info")
    check(mt.eom_check(conn, MT_HDRCHANGE, "Subject", "[sample] macros " .. round),
      "round " .. round .. ": Subject not changed; the milter lost step after the macros")

    mt.abort(conn)
  end
  mt.disconnect(conn)
end)
