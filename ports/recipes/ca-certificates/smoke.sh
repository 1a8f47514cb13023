# Smoke test for ca-certificates: the bundle is present and every certificate in
# it is well-formed PEM holding a DER SEQUENCE (POSIX sh, busybox compatible).
set -eu
bundle="$PKG_PREFIX/etc/ssl/certs/ca-certificates.crt"
[ -s "$bundle" ] || { echo "no CA bundle at $bundle" >&2; exit 1; }
[ -s "$PKG_PREFIX/etc/ssl/cert.pem" ]
begins=$(grep -c '^-----BEGIN CERTIFICATE-----$' "$bundle")
ends=$(grep -c '^-----END CERTIFICATE-----$' "$bundle")
[ "$begins" -eq "$ends" ] && [ "$begins" -ge 100 ] || { echo "bundle has $begins BEGIN and $ends END lines" >&2; exit 1; }
awk -v dir="$PWD" '/^-----BEGIN CERTIFICATE-----$/ { n++; f = dir "/cert" n ".b64"; next } /^-----END CERTIFICATE-----$/ { close(f); f = ""; next } f != "" { print > f }' "$bundle"
i=0
for f in cert*.b64; do
  base64 -d "$f" > der
  [ "$(head -c 1 der | od -An -tx1 | tr -d ' \n')" = 30 ] || { echo "$f is not a DER certificate" >&2; exit 1; }
  i=$((i + 1))
done
[ "$i" -eq "$begins" ]
echo "ca-certificates ok ($i certificates)"
