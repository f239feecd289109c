#!/usr/bin/perl
# Perl Net::FTP (libnet) with IO::Socket::SSL: explicit FTPS (starttls,
# PROT P) in passive or active mode, stores FILE... and prints OK, or ERR
# and the server's reply. Run: ftps_perl.pl PORT USER PASSWORD passive|active FILE...
use strict;
use warnings;
use Net::FTP;
use IO::Socket::SSL;
use File::Basename;
my ($port, $user, $password, $mode, @files) = @ARGV;
my $ftp = Net::FTP->new("127.0.0.1", Port => $port, Timeout => 10,
    Passive => ($mode eq "passive" ? 1 : 0),
    SSL_verify_mode => SSL_VERIFY_NONE) or die "connect: $@";
$ftp->starttls() or do { print "ERR starttls ", $ftp->message; exit 0 };
$ftp->login($user, $password) or do { print "ERR login ", $ftp->message; exit 0 };
$ftp->prot("P") or do { print "ERR prot ", $ftp->message; exit 0 };
$ftp->binary;
my $n = 0;
for my $file (@files) {
    $n++;
    $ftp->put($file, basename($file))
        or do { my $m = $ftp->message; chomp $m; print "ERR put #$n ", $ftp->code, " $m\n"; exit 0 };
}
$ftp->quit;
print "OK\n";
