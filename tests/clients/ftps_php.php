<?php
// PHP's ftp extension, explicit FTPS (ftp_ssl_connect: AUTH TLS, PBSZ 0,
// PROT P), passive mode: stores FILE... and prints OK, or ERR and PHP's
// warning. Run: php ftps_php.php PORT USER PASSWORD FILE...
[$self, $port, $user, $password] = array_slice($argv, 0, 4);
$files = array_slice($argv, 4);
$error = null;
set_error_handler(function ($no, $text) use (&$error) { $error = $text; return true; });
$ftp = ftp_ssl_connect("127.0.0.1", (int)$port, 10);
if (!$ftp || !ftp_login($ftp, $user, $password)) { echo "ERR login $error\n"; exit(0); }
ftp_pasv($ftp, true);
foreach ($files as $i => $file) {
    if (!ftp_put($ftp, basename($file), $file, FTP_BINARY)) {
        echo "ERR put #" . ($i + 1) . " $error\n";
        exit(0);
    }
}
$error = null;
ftp_close($ftp);
echo $error === null ? "OK\n" : "ERR close $error\n";
