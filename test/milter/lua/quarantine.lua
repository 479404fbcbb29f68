-- End of message: a Subject containing `quarantine` has the message quarantined (and still gets
-- the usual header changes); the reply stays `continue`.
dofile((lua_dir or "test/milter/lua") .. "/common.lua")

run(function()
  local conn = open_session()
  send_message(conn, { { "Subject", "please quarantine this" } })
  end_message(conn)
  check(mt.eom_check(conn, MT_QUARANTINE), "the message was not quarantined")
  check(mt.eom_check(conn, MT_QUARANTINE, "subject asks for quarantine"),
    "quarantined, but not with the reason 'subject asks for quarantine'")
  check(mt.eom_check(conn, MT_HDRCHANGE, "Subject", "[sample] please quarantine this"),
    "Subject was not changed")
  check(mt.eom_check(conn, MT_HDRADD, "X-Sample-Milter", CLIENT_IP), "X-Sample-Milter missing")
  check(not mt.eom_check(conn, MT_BODYCHANGE), "the body was replaced unasked")

  -- Both words: quarantined and the body replaced.
  mt.abort(conn)
  send_message(conn, { { "Subject", "quarantine and replace-body" } })
  end_message(conn)
  check(mt.eom_check(conn, MT_QUARANTINE), "both words: not quarantined")
  check(mt.eom_check(conn, MT_BODYCHANGE, "replaced\r\n"), "both words: body not replaced")

  -- A plain Subject on the same connection is not quarantined.
  mt.abort(conn)
  send_message(conn, { { "Subject", "nothing to see" } })
  end_message(conn)
  check(not mt.eom_check(conn, MT_QUARANTINE), "a plain message was quarantined")
  mt.disconnect(conn)
end)
