#!/usr/bin/env bash
# The README's curl flow against a running bridge (`npm start`): upload a file as a multipart
# attachment, list the document's attachments, download the file and compare it, delete it.
#
#   FUNCTION_KEY=<the key npm start printed> examples/curl.sh
#
# Environment: BRIDGE_URL (default http://127.0.0.1:7071/api), FUNCTION_KEY (required), DB, COLL, DOC
# (default demo/items/welcome: the document npm start seeds, partitioned by /id, so its partition key
# is its id). Needs curl 7.76 or newer (--fail-with-body).
set -euo pipefail

BASE=${BRIDGE_URL:-http://127.0.0.1:7071/api}
KEY=${FUNCTION_KEY:?set FUNCTION_KEY to the function key npm start printed}
DB=${DB:-demo} COLL=${COLL:-items} DOC=${DOC:-welcome}
URL="$BASE/dbs/$DB/colls/$COLL/docs/$DOC/attachments"
AUTH=(-H "x-functions-key: $KEY")
# The partition key: a JSON array in the header, a plain value in ?partitionKey= (links carry no headers).
PK_HEADER="x-ms-documentdb-partitionkey: [\"$DOC\"]"
PK_QUERY="partitionKey=$DOC"

WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
NAME="hello-$(date +%s)-$$.txt"
printf 'Hello from curl, %s\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" >"$WORK/$NAME"

echo "1. upload $NAME (multipart/form-data; the part's file name is the attachment id)"
curl -sS --fail-with-body "${AUTH[@]}" -H "$PK_HEADER" \
  -F "file=@$WORK/$NAME;type=text/plain" "$URL"
echo

echo "2. list the document's attachments (10 per page; x-ms-continuation names the next page)"
curl -sS --fail-with-body "${AUTH[@]}" "$URL?$PK_QUERY&maxItemCount=10" | grep -o "\"id\":\"$NAME\""

echo "3. download it and compare"
curl -sS --fail-with-body "${AUTH[@]}" -o "$WORK/downloaded" "$URL/$NAME/media?$PK_QUERY"
cmp "$WORK/$NAME" "$WORK/downloaded"
echo "same bytes"

echo "4. delete it"
curl -sS --fail-with-body "${AUTH[@]}" -X DELETE -o /dev/null -w '%{http_code}\n' "$URL/$NAME?$PK_QUERY"
