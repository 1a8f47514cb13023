# Smoke test for openssl: version, a known digest, an Ed25519 sign/verify
# round trip and a TLS-free self-signed certificate (POSIX sh, busybox compatible).
set -eu
openssl version | grep -q '^OpenSSL 3\.0\.22 '
openssl version -d | grep -q '"/pkg/current/etc/ssl"'
d=$(printf abc | openssl dgst -sha256 -r | cut -d ' ' -f 1)
[ "$d" = ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad ] || { echo "sha256(abc) = $d" >&2; exit 1; }
openssl genpkey -algorithm ed25519 -out key.pem
printf 'signed message\n' > msg
openssl pkeyutl -sign -inkey key.pem -rawin -in msg -out msg.sig
openssl pkey -in key.pem -pubout -out pub.pem
openssl pkeyutl -verify -pubin -inkey pub.pem -rawin -in msg -sigfile msg.sig | grep -q 'Signature Verified Successfully'
openssl req -x509 -new -key key.pem -subj /CN=smoke.test -days 1 -out cert.pem 2>/dev/null
openssl x509 -in cert.pem -noout -subject | grep -q 'CN = smoke.test'
[ -f "$PKG_PREFIX/lib/libssl.a" ] && [ -f "$PKG_PREFIX/lib/libcrypto.a" ]
echo "openssl ok"
