# The networks of tests/topology/clients.sh (sourced: uses $p, inns and the
# address tables defined there). All addresses are in 198.18.0.0/15 (RFC
# 2544's benchmark range): 198.18.x plays public addresses, 198.19.x private
# ones.

# wire A IFA ADDRA B IFB ADDRB: a veth pair between namespaces A and B.
wire() {
    local a=$1 ifa=$2 addra=$3 b=$4 ifb=$5 addrb=$6
    ip link add "$ifa" netns "$p-$a" type veth peer name "$ifb" netns "$p-$b" || return 1
    inns "$a" ip addr add "$addra" dev "$ifa"
    inns "$b" ip addr add "$addrb" dev "$ifb"
    inns "$a" ip link set "$ifa" up
    inns "$b" ip link set "$ifb" up
}

host() { # host NAME [router]
    ip netns add "$p-$1" || return 1
    inns "$1" ip link set lo up
    if [ "${2:-}" = router ]; then
        inns "$1" sysctl -qw net.ipv4.ip_forward=1
    fi
}

# A site router: NAT (masquerade) or not, FTP helper or not, and a stateful
# forward chain: from the inside anything; from the outside only what
# belongs to a connection the inside opened (established), or what its FTP
# helper expects (related: the data connection of an FTP session it saw).
# The router's own input is not filtered: a connection to its NAT address
# that nothing expects is refused at once (a router that drops it makes the
# server wait active_connect_timeout; the transfer fails either way).
site_router() { # site_router NAME NAT(nat|nonat) HELPER(helper|nohelper)
    local name=$1 nat=$2 helper=$3
    {
        echo "table ip $name {"
        if [ "$helper" = helper ]; then
            # RFC 959 control connections get the kernel's FTP helper
            # (nf_conntrack_ftp; nf_nat_ftp rewrites PORT/EPRT when NATing).
            echo '  ct helper ftp-standard { type "ftp" protocol tcp; }'
            echo '  chain pre { type filter hook prerouting priority filter; policy accept;'
            echo '    iifname "lan" tcp dport 21 ct helper set "ftp-standard"'
            echo '  }'
        fi
        echo '  chain forward { type filter hook forward priority filter; policy drop;'
        echo '    ct state established,related accept'
        echo '    iifname "lan" accept'
        echo '  }'
        if [ "$nat" = nat ]; then
            echo '  chain post { type nat hook postrouting priority srcnat; policy accept;'
            echo '    oifname "wan" masquerade'
            echo '  }'
        fi
        echo "}"
    } | inns "$name" nft -f -
}

build_network() {
    host inet router || return 1
    # Sites: the router's WAN on the Internet, the device on its LAN.
    host dev-routed
    wire inet r-routed 198.18.13.1/24 dev-routed eth0 "${DEVICE_IP[routed]}/24"
    local site wan_net
    declare -A wan=([natftp]=10 [fwftp]=11 [cgnat]=14)
    for site in natftp fwftp cgnat; do
        wan_net=198.18.${wan[$site]}
        host "$site" router
        host "dev-$site"
        wire inet "r-$site" "$wan_net.1/24" "$site" wan "$wan_net.2/24"
        inns "$site" ip route add default via "$wan_net.1"
        wire "$site" lan "${DEVICE_GW[$site]}/24" "dev-$site" eth0 "${DEVICE_IP[$site]}/24"
    done
    # The firewalled device has a public address: the Internet routes to it.
    inns inet ip route add 198.18.12.0/24 via 198.18.11.2
    site_router natftp nat helper || return 1
    site_router fwftp nonat helper || return 1
    site_router cgnat nat nohelper || return 1
    local device
    for device in $DEVICES; do
        inns "dev-$device" ip route add default via "${DEVICE_GW[$device]}"
    done

    # AWS: the edge holds the NLB, the IGW and the S3 endpoint; the
    # instances sit on its VPC bridge.
    host edge router
    wire inet r-aws 198.18.20.1/24 edge wan 198.18.20.2/24
    inns edge ip route add default via 198.18.20.1
    inns inet ip route add 198.18.30.0/24 via 198.18.20.2
    inns edge ip link add vpc type bridge
    inns edge ip addr add "$VPC_GW/24" dev vpc
    inns edge ip link set vpc up
    local i
    for i in $INSTANCES; do
        host "$i"
        wire edge "v-$i" 0.0.0.0/32 "$i" eth0 "${PRIVATE_IP[$i]}/24"
        inns edge ip addr flush dev "v-$i"
        inns edge ip link set "v-$i" master vpc
        inns "$i" ip route add default via "$VPC_GW"
    done
    # The NLB's address answers on 21 only: it is local to the edge, so a
    # connection to any other port is refused at once (a real NLB drops it
    # and the client times out; the cell fails either way, sooner here).
    inns edge ip addr add "$NLB_VIP/32" dev lo
    inns edge nft -f - <<EOF || return 1
table ip aws {
    map nlb_targets {
        typeof numgen inc mod 2 : ip daddr
        elements = { 0 : ${PRIVATE_IP[ia]}, 1 : ${PRIVATE_IP[ib]} }
    }
    # The IGW's 1:1 NAT: one map each way, filled by igw_map.
    map public_to_private { type ipv4_addr : ipv4_addr; }
    map private_to_public { type ipv4_addr : ipv4_addr; }
    chain pre {
        type nat hook prerouting priority dstnat; policy accept;
        # NLB with instance targets: the client's address is kept.
        ip daddr $NLB_VIP tcp dport 21 dnat to numgen inc mod 2 map @nlb_targets
        dnat to ip daddr map @public_to_private
    }
    chain post {
        type nat hook postrouting priority srcnat; policy accept;
        oifname "wan" snat to ip saddr map @private_to_public
    }
}
EOF
}

igw_map() { # igw_map PUBLIC PRIVATE
    inns edge nft add element ip aws public_to_private "{ $1 : $2 }" &&
        inns edge nft add element ip aws private_to_public "{ $2 : $1 }"
}

igw_reset() { # no public address mapped
    inns edge nft flush map ip aws public_to_private &&
        inns edge nft flush map ip aws private_to_public
}
