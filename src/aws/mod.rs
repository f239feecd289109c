//! The AWS services the appliance talks to besides S3: the EC2 instance
//! metadata service (IMDSv2) and CloudWatch's embedded metric format.

pub mod emf;
pub mod imds;
