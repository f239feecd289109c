#!/usr/bin/env python3
"""The EC2 side of tests/topology/clients.sh, against moto's server mode: what
the stack creates for the `direct` topology (a pool of Elastic IPs tagged
lakeftpd:pool=POOL) and the instances the Auto Scaling group launches, then,
after image/lakeftpd-claim.sh ran on each instance, which address each holds.

Usage: ec2_pool.py ENDPOINT setup POOL COUNT ADDRESS...
           allocates ADDRESS... (the test's public addresses) in the pool,
           launches COUNT instances; prints their instance ids, one a line
       ec2_pool.py ENDPOINT holders POOL
           prints "INSTANCE_ID PUBLIC_IP" for each associated pool address
"""
import sys

import boto3

TAG = "lakeftpd:pool"
REGION = "ap-northeast-1"


def client(endpoint):
    return boto3.client("ec2", region_name=REGION, endpoint_url=endpoint,
                        aws_access_key_id="test", aws_secret_access_key="test")


def setup(ec2, pool, count, addresses):
    tags = [{"ResourceType": "elastic-ip", "Tags": [{"Key": TAG, "Value": pool}]}]
    for address in addresses:
        # moto honours Address (as EC2 does for BYOIP pools), so the pool holds
        # the addresses the test's internet gateway can route.
        ec2.allocate_address(Domain="vpc", Address=address, TagSpecifications=tags)
    image = ec2.describe_images()["Images"][0]["ImageId"]
    launched = ec2.run_instances(ImageId=image, MinCount=count, MaxCount=count, InstanceType="t3.small")
    for instance in launched["Instances"]:
        print(instance["InstanceId"])


def holders(ec2, pool):
    found = ec2.describe_addresses(Filters=[{"Name": f"tag:{TAG}", "Values": [pool]}])["Addresses"]
    for address in found:
        if address.get("InstanceId"):
            print(address["InstanceId"], address["PublicIp"])


def main():
    endpoint, command = sys.argv[1], sys.argv[2]
    ec2 = client(endpoint)
    if command == "setup":
        setup(ec2, sys.argv[3], int(sys.argv[4]), sys.argv[5:])
    elif command == "holders":
        holders(ec2, sys.argv[3])
    else:
        sys.exit(f"ec2_pool: no command {command}")


main()
