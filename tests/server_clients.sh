#!/bin/sh
# server_clients.sh -- llmserve driven by real clients: the official OpenAI
# Python client (tests/server_openai.py) and the chat page in headless
# Chromium through Selenium (tests/server_chat_page.py), against a server
# that requires an API key.  Each part skips, saying so, when its tools are
# missing (scripts/setup.sh installs them).
. "$(dirname "$0")/server_lib.sh"

py=${PYTHON3:-python3}
printf 'sk-client-test-0001 tester\n' >"$tmp/keys"
start_server c --model "$model_fast" --api-keys "$tmp/keys" || { not_ok "server starts"; finish; }
ran=0
if "$py" -c 'import openai' 2>/dev/null; then
    ran=1
    if "$py" "$top_srcdir/tests/server_openai.py" "http://127.0.0.1:$c_port/v1" "$model_fast" sk-client-test-0001 \
        >"$tmp/openai.out" 2>&1; then
        ok "the OpenAI Python client ($(grep -c '^ok' "$tmp/openai.out") checks)"
    else
        not_ok "the OpenAI Python client"
    fi
    sed 's/^/#   /' "$tmp/openai.out"
else
    echo "# SKIP the OpenAI client: '$py' has no openai module (pip install openai)"
fi
if "$py" -c 'import selenium' 2>/dev/null && [ -x /usr/bin/chromedriver ] && command -v chromium >/dev/null 2>&1; then
    ran=1
    if timeout 120 "$py" "$top_srcdir/tests/server_chat_page.py" "http://127.0.0.1:$c_port/" sk-client-test-0001 \
        >"$tmp/page.out" 2>&1; then
        ok "the chat page in headless Chromium ($(grep -c '^ok' "$tmp/page.out") checks)"
    else
        not_ok "the chat page in headless Chromium"
    fi
    sed 's/^/#   /' "$tmp/page.out" | tail -20
else
    echo "# SKIP the chat page: needs selenium (pip), chromium and chromium-driver (Debian)"
fi
[ "$ran" = 1 ] || skip "neither the OpenAI client nor Selenium with Chromium is available"
check "no key in the server's log" sh -c "! grep -q sk-client-test $tmp/c.err"
# SIGTERM: drained, exit 0 (under ASan: nothing leaked)
for name in c; do
    eval "spid=\$${name}_pid"
    kill -TERM "$spid" 2>/dev/null
    wait "$spid"
    rc=$?
    check "server $name drains and exits 0 (status $rc)" sh -c "[ $rc -eq 0 ] && ! grep -q 'LeakSanitizer\|runtime error' $tmp/$name.err"
done
finish
