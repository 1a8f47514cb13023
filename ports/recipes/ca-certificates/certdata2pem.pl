#!/usr/bin/perl
# Writes the Mozilla CA bundle as PEM to stdout: a Perl rendering of Debian's
# mozilla/certdata2pem.py (which needs python3-cryptography only to print a
# warning about expired roots). Same trust rule: a certificate is included when
# its CKO_NSS_TRUST object marks server authentication CKT_NSS_TRUSTED_DELEGATOR
# and its label is not in blacklist.txt; then the extra/*.crt files are added.
# Certificates are ordered by Debian's file name for them, byte-wise, so the
# output depends only on the input files.
use strict;
use warnings;
use MIME::Base64 qw(encode_base64);

my ($certdata, $blacklist, $extra) = @ARGV;
die "usage: certdata2pem.pl certdata.txt blacklist.txt extra-dir\n" unless defined $extra;

my (@objects, %obj, $field, $type, $value);
my ($in_data, $in_multiline, $in_obj) = (0, 0, 0);
open(my $fh, '<:raw', $certdata) or die "$certdata: $!\n";
while (my $line = <$fh>) {
    if (!$in_data) { $in_data = 1 if $line =~ /^BEGINDATA/; next; }
    next if $line =~ /^#/;
    if ($in_obj && $line =~ /^\s*$/) { push @objects, {%obj}; %obj = (); $in_obj = 0; next; }
    next if $line =~ /^\s*$/;
    if ($in_multiline) {
        if ($line !~ /^END/) {
            if ($type eq 'MULTILINE_OCTAL') { $value .= chr(oct($1)) while $line =~ /\\([0-3][0-7][0-7])/g; }
            else { $value .= $line; }
            next;
        }
        $obj{$field} = $value;
        $in_multiline = 0;
        next;
    }
    $in_obj = 1 if $line =~ /^CKA_CLASS/;
    $line =~ s/^\s+|\s+$//g;
    my @parts = split / /, $line, 3;
    die "malformed line: $line\n" if @parts < 2;
    ($field, $type) = @parts[0, 1];
    $value = @parts > 2 ? $parts[2] : undef;
    if ($type eq 'MULTILINE_OCTAL') { $in_multiline = 1; $value = ''; next; }
    $obj{$field} = $value;
}
close($fh);
push @objects, {%obj} if %obj;

my %blocked;
if (open(my $bl, '<', $blacklist)) {
    while (my $l = <$bl>) {
        $l =~ s/#.*//; $l =~ s/^\s+|\s+$//g;
        $blocked{$l} = 1 if length $l;
    }
    close($bl);
}

my %trusted;
for my $o (@objects) {
    next unless ($o->{CKA_CLASS} // '') eq 'CKO_NSS_TRUST';
    next if $blocked{$o->{CKA_LABEL}};
    $trusted{$o->{CKA_LABEL}} = 1 if ($o->{CKA_TRUST_SERVER_AUTH} // '') eq 'CKT_NSS_TRUSTED_DELEGATOR';
}

my %pem;
for my $o (@objects) {
    next unless ($o->{CKA_CLASS} // '') eq 'CKO_CERTIFICATE' && $trusted{$o->{CKA_LABEL}};
    my $name = substr($o->{CKA_LABEL}, 1, -1);
    $name =~ s{[/ ]}{_}g; $name =~ tr/(),/==_/;
    $name =~ s/\\x([0-9A-Fa-f]{2})/chr(hex($1))/ge;
    $name .= '_2' if exists $pem{"$name.crt"};
    my $b64 = encode_base64($o->{CKA_VALUE}, '');
    $b64 =~ s/(.{1,64})/$1\n/g;
    $pem{"$name.crt"} = "-----BEGIN CERTIFICATE-----\n$b64-----END CERTIFICATE-----\n";
}

opendir(my $dh, $extra) or die "$extra: $!\n";
for my $f (grep { /\.crt$/ } readdir($dh)) {
    open(my $x, '<:raw', "$extra/$f") or die "$extra/$f: $!\n";
    local $/;
    my $text = <$x>;
    close($x);
    $text .= "\n" unless $text =~ /\n$/;
    $pem{$f} = $text;
}
closedir($dh);

binmode(STDOUT);
print $pem{$_} for sort keys %pem;
printf STDERR "%d certificates\n", scalar(keys %pem);
