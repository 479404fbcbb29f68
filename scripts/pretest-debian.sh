#!/usr/bin/env bash
# Installs from Debian what the interoperability tests need: Postfix, swaks, miltertest and
# PostgreSQL. It runs before `npm test`. As root it installs whatever is missing (one
# `apt-get update`, then `apt-get install -y`); otherwise it says loudly what is missing, and the
# tests that need it skip themselves, naming it again.
set -u

missing=()
have() { command -v "$1" >/dev/null 2>&1 || [ -x "$1" ]; }
have_postgres() { compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null; }

have /usr/sbin/postfix || missing+=(postfix)
have swaks || missing+=(swaks)
have miltertest || missing+=(miltertest)
have_postgres || missing+=(postgresql)

if [ ${#missing[@]} -eq 0 ]; then
  echo "pretest: postfix, swaks, miltertest and postgresql are installed"
  exit 0
fi

if [ "$(id -u)" != "0" ] || ! command -v apt-get >/dev/null 2>&1; then
  echo "================================================================" >&2
  echo "pretest: MISSING ${missing[*]}" >&2
  echo "pretest: not root (or no apt-get), so they cannot be installed here;" >&2
  echo "pretest: the interoperability tests that need them will be SKIPPED." >&2
  echo "================================================================" >&2
  exit 0
fi

echo "pretest: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
# Postfix must not be configured as this machine's mailer, and PostgreSQL must not create and
# start a system cluster on the common port: the tests run their own, on ports of their own.
echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections
if [ ! -e /etc/postgresql-common/createcluster.conf ]; then
  mkdir -p /etc/postgresql-common
  echo "create_main_cluster = false" > /etc/postgresql-common/createcluster.conf
fi
packages=()
for m in "${missing[@]}"; do packages+=("$m"); done
if ! apt-get update -q >/tmp/mailgate-apt-update.log 2>&1; then
  echo "pretest: apt-get update failed (see /tmp/mailgate-apt-update.log); interop tests may skip" >&2
  exit 0
fi
if ! apt-get install -y -q --no-install-recommends -o Dpkg::Options::=--force-confold "${packages[@]}" \
  >/tmp/mailgate-apt-install.log 2>&1; then
  echo "pretest: apt-get install ${packages[*]} failed (see /tmp/mailgate-apt-install.log)" >&2
  tail -n 20 /tmp/mailgate-apt-install.log >&2
  exit 0
fi
echo "pretest: installed ${packages[*]}"
