# Packer template for the lakeftpd AMI (Amazon Linux 2023, x86_64 and arm64).
#
# Build the static binaries first, from the repository root (docs/testing.md, "Builds"):
#   image/build.sh      # both musl targets; checks static + stripped
# then:
#   packer init image/lakeftpd.pkr.hcl
#   packer build image/lakeftpd.pkr.hcl                       # both architectures
#   packer build -only='amazon-ebs.x86_64' image/lakeftpd.pkr.hcl
#
# Written for Packer >= 1.8 with the Amazon plugin >= 1.2 (imds_support needs
# it). What was and was not validated here: docs/deploy-aws.md.

packer {
  required_plugins {
    amazon = {
      version = ">= 1.2.0"
      source  = "github.com/hashicorp/amazon"
    }
  }
}

variable "region" {
  type        = string
  default     = "ap-northeast-1"
  description = "Region to build the AMI in."
}

variable "instance_type_x86_64" {
  type    = string
  default = "t3.small"
}

variable "instance_type_arm64" {
  type    = string
  default = "t4g.small"
}

variable "subnet_id" {
  type        = string
  default     = ""
  description = "Subnet for the build instance (empty: the default VPC). It needs a route to the internet or to dnf's S3-hosted repository for the CloudWatch agent package."
}

locals {
  # Sortable and unique per build; AMI names must be unique per region.
  stamp = formatdate("YYYYMMDDhhmmss", timestamp())
  # Repository root, so the template works from any working directory.
  repo = "${path.root}/.."
  # Which Rust target's release binary goes into which AMI.
  rust_target = {
    x86_64 = "x86_64-unknown-linux-musl"
    arm64  = "aarch64-unknown-linux-musl"
  }
  # Where the file provisioners put their inputs; provision.sh looks next to
  # itself for `lakeftpd`, `lakeftpd.service`, `lakeftpd-claim.sh`,
  # `lakeftpd-ops.sh` and the other lakeftpd-* units.
  staging = "/tmp/lakeftpd-image"
}

# Settings shared by both architectures are repeated: HCL2 sources cannot
# inherit from each other.
source "amazon-ebs" "x86_64" {
  region        = var.region
  instance_type = var.instance_type_x86_64
  subnet_id     = var.subnet_id
  ssh_username  = "ec2-user"
  # Remove Packer's temporary key from authorized_keys before the snapshot.
  ssh_clear_authorized_keys = true
  ami_name                  = "lakeftpd-al2023-x86_64-${local.stamp}"
  # Instances launched from this AMI default to IMDSv2 only (tokens required).
  imds_support = "v2.0"

  source_ami_filter {
    filters = {
      name                = "al2023-ami-2023.*-kernel-*-x86_64"
      architecture        = "x86_64"
      root-device-type    = "ebs"
      virtualization-type = "hvm"
    }
    owners      = ["amazon"]
    most_recent = true
  }

  # The build instance itself also uses IMDSv2 only.
  metadata_options {
    http_endpoint               = "enabled"
    http_tokens                 = "required"
    http_put_response_hop_limit = 1
  }

  tags = {
    Name          = "lakeftpd-al2023-x86_64"
    Application   = "lakeftpd"
    SourceAMI     = "{{ .SourceAMI }}"
    SourceAMIName = "{{ .SourceAMIName }}"
  }
}

source "amazon-ebs" "arm64" {
  region        = var.region
  instance_type = var.instance_type_arm64
  subnet_id     = var.subnet_id
  ssh_username  = "ec2-user"
  # Remove Packer's temporary key from authorized_keys before the snapshot.
  ssh_clear_authorized_keys = true
  ami_name                  = "lakeftpd-al2023-arm64-${local.stamp}"
  imds_support              = "v2.0"

  source_ami_filter {
    filters = {
      name                = "al2023-ami-2023.*-kernel-*-arm64"
      architecture        = "arm64"
      root-device-type    = "ebs"
      virtualization-type = "hvm"
    }
    owners      = ["amazon"]
    most_recent = true
  }

  metadata_options {
    http_endpoint               = "enabled"
    http_tokens                 = "required"
    http_put_response_hop_limit = 1
  }

  tags = {
    Name          = "lakeftpd-al2023-arm64"
    Application   = "lakeftpd"
    SourceAMI     = "{{ .SourceAMI }}"
    SourceAMIName = "{{ .SourceAMIName }}"
  }
}

build {
  sources = ["source.amazon-ebs.x86_64", "source.amazon-ebs.arm64"]

  provisioner "shell" {
    inline = ["mkdir -p ${local.staging}"]
  }

  # source.name is "x86_64" or "arm64": pick that architecture's binary.
  provisioner "file" {
    source      = "${local.repo}/target/${local.rust_target[source.name]}/release/lakeftpd"
    destination = "${local.staging}/lakeftpd"
  }

  provisioner "file" {
    source      = "${local.repo}/systemd/lakeftpd.service"
    destination = "${local.staging}/lakeftpd.service"
  }

  provisioner "file" {
    source      = "${local.repo}/image/provision.sh"
    destination = "${local.staging}/provision.sh"
  }

  # lakeftpd-ops and its units (lifecycle hook, liveness, transfer records).
  provisioner "file" {
    sources = [
      "${local.repo}/image/lakeftpd-ops.sh",
      "${local.repo}/systemd/lakeftpd-lifecycle.service",
      "${local.repo}/systemd/lakeftpd-unhealthy.service",
      "${local.repo}/systemd/lakeftpd-liveness.service",
      "${local.repo}/systemd/lakeftpd-liveness.timer",
      "${local.repo}/systemd/lakeftpd-logs.service",
    ]
    destination = "${local.staging}/"
  }

  # The direct topology's address claim (docs/deploy-aws.md).
  provisioner "file" {
    source      = "${local.repo}/image/lakeftpd-claim.sh"
    destination = "${local.staging}/lakeftpd-claim.sh"
  }

  provisioner "file" {
    source      = "${local.repo}/systemd/lakeftpd-claim.service"
    destination = "${local.staging}/lakeftpd-claim.service"
  }

  # The same script tests/appliance/run.sh runs against a scratch root.
  provisioner "shell" {
    inline = [
      "chmod 0755 ${local.staging}/lakeftpd ${local.staging}/provision.sh ${local.staging}/lakeftpd-ops.sh",
      "sudo ${local.staging}/provision.sh /",
    ]
  }

  # Leave no build inputs in the image. (Packer's temporary SSH key is removed
  # by ssh_clear_authorized_keys; sshd itself is masked from the next boot.)
  provisioner "shell" {
    inline = ["sudo rm -rf ${local.staging}"]
  }
}
