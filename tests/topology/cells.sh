# The clients of tests/topology/clients.sh (sourced), each at its DEFAULT
# settings. A cell is CLIENT:MODE; "passive" and "active" are the client's
# own ways of choosing them (its default, or the one switch it has). The
# only other options are what running unattended against this test's
# self-signed certificate needs, listed in docs/interop.md ("Topology"):
#   - a bound on the run (timeout; lftp's net:max-retries 1, as lftp retries
#     a failed transfer 1000 times by default);
#   - not verifying the certificate in the -tls cells (curl -k, lftp
#     ssl:verify-certificate no, ftplib's unverified context);
#   - lftp's plain cells say ftp:ssl-allow no: lftp starts TLS by itself when
#     the server offers it (and would then refuse the self-signed certificate).
# lftp-ccc is lftp-tls with ftp:ssl-use-ccc yes (off by default): what a
# device behind an FTP helper sets to use FTPS in active mode (RFC 2228 CCC,
# served with the stack's TlsAllowCcc = on).
#
# Users: the operator's remedy for devices whose TLS stack never resumes the
# control connection's TLS session on a data connection is a user of their
# own with `tls_session_reuse = off` (docs/security.md). ftplib-tls (stock
# FTP_TLS never resumes) and lftp-ccc (lftp drops the session with CCC) log
# in as $REUSE_OFF_USER, whose section says so; every other client as
# $USER_NAME, at the default tls_session_reuse = required.

CELLS="curl:passive curl:active curl-tls:passive busybox:passive
ftplib:passive ftplib:active ftplib-tls:passive ftplib-tls:active
inetutils:active inetutils:passive tnftp:passive tnftp:active
lftp:passive lftp:active lftp-tls:passive lftp-tls:active
lftp-ccc:active"

# user_for CLIENT: the user the client logs in as (see above).
user_for() {
    case $1 in
        ftplib-tls | lftp-ccc) echo "$REUSE_OFF_USER" ;;
        *) echo "$USER_NAME" ;;
    esac
}

# run_cell DEVICE SERVER CLIENT MODE FILE NAME USER: upload FILE as NAME
# from the device's namespace, logged in as USER; exit 0 when the client
# reports success.
run_cell() {
    local device=$1 server=$2 client=$3 mode=$4 file=$5 name=$6 user=$7
    local on=(ip netns exec "$p-dev-$device" timeout "$CELL_TIMEOUT")
    local url="ftp://$user:$PASSWORD@$server/$name"
    case $client in
        curl)
            # Default: EPSV, then PASV, ignoring PASV's address (curl >= 7.74).
            local active=()
            [ "$mode" = active ] && active=(-P -)
            "${on[@]}" curl -sS "${active[@]}" -T "$file" "$url"
            ;;
        curl-tls)
            "${on[@]}" curl -sS --ssl-reqd -k -T "$file" "$url"
            ;;
        busybox)
            # Passive only (PASV; the data connection goes to the control
            # connection's address). Upload only: with the stack's
            # keep_local = off the home copy is gone once S3 has the file,
            # so there is nothing to download again.
            "${on[@]}" busybox ftpput -u "$user" -p "$PASSWORD" "$server" "$name" "$file"
            ;;
        ftplib | ftplib-tls)
            "${on[@]}" python3 -c "$FTPLIB" "$server" "$user" "$PASSWORD" "$name" "$file" "$mode" "$client"
            ;;
        inetutils | tnftp)
            # Both read commands on stdin. inetutils starts active and
            # `passive` switches; tnftp starts passive and -A makes it active.
            local program=inetutils-ftp switch="" flags=(-n -v)
            [ "$client" = inetutils ] && [ "$mode" = passive ] && switch=$'passive\n'
            if [ "$client" = tnftp ]; then
                program=tnftp
                [ "$mode" = active ] && flags+=(-A)
            fi
            local out
            out=$(printf 'user %s %s\nbinary\n%sput %s %s\nquit\n' "$user" "$PASSWORD" "$switch" "$file" "$name" |
                "${on[@]}" "$program" "${flags[@]}" "$server" 2>&1)
            echo "$out"
            grep -q '^226' <<<"$out"
            ;;
        lftp | lftp-tls | lftp-ccc)
            local settings="set cmd:fail-exit yes; set net:max-retries 1; set net:timeout 20;"
            if [ "$client" = lftp ]; then
                settings+=" set ftp:ssl-allow no;"
            else
                settings+=" set ftp:ssl-force yes; set ftp:ssl-protect-data yes; set ssl:verify-certificate no;"
            fi
            [ "$client" = lftp-ccc ] && settings+=" set ftp:ssl-use-ccc yes;"
            [ "$mode" = active ] && settings+=" set ftp:passive-mode off;"
            "${on[@]}" lftp -u "$user,$PASSWORD" -e "$settings put $file -o $name; bye" "$server"
            ;;
        *)
            echo "no such client: $client"
            return 1
            ;;
    esac
}

# Python's ftplib as shipped: passive by default (and, since 3.9.2/bpo-43285,
# the data connection goes to the control connection's address, not PASV's);
# set_pasv(False) for active. FTP_TLS: login() sends AUTH TLS, prot_p()
# protects the data connection.
FTPLIB='
import ftplib, ssl, sys
host, user, password, name, path, mode, client = sys.argv[1:]
if client == "ftplib-tls":
    f = ftplib.FTP_TLS(context=ssl._create_unverified_context(), timeout=30)
else:
    f = ftplib.FTP(timeout=30)
f.connect(host, 21)
f.login(user, password)
if client == "ftplib-tls":
    f.prot_p()
if mode == "active":
    f.set_pasv(False)
with open(path, "rb") as data:
    print(f.storbinary("STOR " + name, data))
f.quit()
'
