# Debian-native source: only mozilla/ is used. The bundle lands where the
# openssl and curl ports look for it (/pkg/current/etc/ssl), with cert.pem as
# OpenSSL's default CA file name.
cd mozilla
perl "$RECIPE_DIR/certdata2pem.pl" certdata.txt blacklist.txt extra > ca-certificates.crt
mkdir -p "$DESTDIR$PREFIX/etc/ssl/certs"
install -m 0644 ca-certificates.crt "$DESTDIR$PREFIX/etc/ssl/certs/ca-certificates.crt"
ln -s certs/ca-certificates.crt "$DESTDIR$PREFIX/etc/ssl/cert.pem"
