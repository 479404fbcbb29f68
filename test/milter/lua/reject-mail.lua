-- MAIL FROM <reject@...> is refused with a custom reply (the sample milter sends the two-line
-- `550-5.7.1 rejected by sample` / `550 5.7.1 see docs`; miltertest shows only that a custom
-- reply came, so the text is checked by test/milter/miltertest.test.ts). Any other local part,
-- and a later transaction on the same connection, go through.
dofile((lua_dir or "test/milter/lua") .. "/common.lua")

run(function()
  local conn = open_session()
  step("mailfrom <reject@...>", SMFIR_REPLYCODE, mt.mailfrom, conn, "<reject@client.example.net>")
  mt.abort(conn)
  step("mailfrom <REJECT@...> (case)", SMFIR_REPLYCODE, mt.mailfrom, conn,
    "<REJECT@other.example>")
  mt.abort(conn)
  step("mailfrom <rejected@...>", SMFIR_CONTINUE, mt.mailfrom, conn, "<rejected@client.example.net>")
  mt.abort(conn)
  step("mailfrom <someone@reject.example>", SMFIR_CONTINUE, mt.mailfrom, conn,
    "<someone@reject.example>")
  mt.abort(conn)

  -- The connection is still good for a whole message.
  send_message(conn, { { "Subject", "after a reject" } })
  end_message(conn)
  check(mt.eom_check(conn, MT_HDRADD, "X-Sample-Milter", CLIENT_IP), "X-Sample-Milter missing")
  mt.disconnect(conn)
end)
