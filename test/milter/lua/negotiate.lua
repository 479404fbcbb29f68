-- Option negotiation: offered everything Postfix offers, the sample milter asks for exactly the
-- actions it uses and waives the replies to the steps it only logs.
dofile((lua_dir or "test/milter/lua") .. "/common.lua")

run(function()
  local conn = open()

  -- The end-of-message actions it performs, and no others.
  check(mt.test_action(conn, SMFIF_ADDHDRS), "SMFIF_ADDHDRS not requested (it adds X-Sample-Milter)")
  check(mt.test_action(conn, SMFIF_CHGHDRS), "SMFIF_CHGHDRS not requested (it changes Subject)")
  check(mt.test_action(conn, SMFIF_CHGBODY), "SMFIF_CHGBODY not requested (it replaces bodies)")
  check(mt.test_action(conn, SMFIF_QUARANTINE), "SMFIF_QUARANTINE not requested (it quarantines)")
  for _, name in ipairs({ "SMFIF_ADDRCPT", "SMFIF_DELRCPT", "SMFIF_CHGFROM", "SMFIF_ADDRCPT_PAR" }) do
    check(not mt.test_action(conn, _G[name]), name .. " requested, but the sample milter never uses it")
  end

  -- Every step it has a callback for is sent (no SMFIP_NO* for them) ...
  for _, name in ipairs({ "SMFIP_NOCONNECT", "SMFIP_NOHELO", "SMFIP_NOMAIL", "SMFIP_NORCPT",
    "SMFIP_NODATA", "SMFIP_NOHDRS", "SMFIP_NOEOH", "SMFIP_NOBODY" }) do
    check(not mt.test_option(conn, _G[name]), name .. " requested, but the sample milter has that callback")
  end
  -- ... but UNKNOWN, which it has no callback for, is not.
  check(mt.test_option(conn, SMFIP_NOUNKNOWN), "SMFIP_NOUNKNOWN not requested (no unknown callback)")

  -- The steps it only logs need no reply ...
  for _, name in ipairs({ "SMFIP_NR_CONN", "SMFIP_NR_HELO", "SMFIP_NR_DATA", "SMFIP_NR_HDR",
    "SMFIP_NR_EOH", "SMFIP_NR_BODY" }) do
    check(mt.test_option(conn, _G[name]), name .. " not requested, but the sample milter only logs that step")
  end
  -- ... while MAIL and RCPT, where it may reject or tempfail, must be answered.
  check(not mt.test_option(conn, SMFIP_NR_MAIL), "SMFIP_NR_MAIL requested, but MAIL FROM can be rejected")
  check(not mt.test_option(conn, SMFIP_NR_RCPT), "SMFIP_NR_RCPT requested, but RCPT TO can be tempfailed")

  -- Behaviours it did not ask for.
  check(not mt.test_option(conn, SMFIP_RCPT_REJ), "SMFIP_RCPT_REJ requested, but not declared")
  check(not mt.test_option(conn, SMFIP_HDR_LEADSPC), "SMFIP_HDR_LEADSPC requested, but not declared")

  -- And a whole message goes through with those options: the steps without a reply are not
  -- answered (miltertest would read a stray reply as the answer to the next step).
  step("conninfo", SMFIR_CONTINUE, mt.conninfo, conn, CLIENT_HOST, CLIENT_IP)
  step("helo", SMFIR_CONTINUE, mt.helo, conn, "mail.client.example.net")
  send_message(conn, { { "From", "<sender@client.example.net>" }, { "Subject", "negotiation" } })
  end_message(conn)
  mt.disconnect(conn)
end)
