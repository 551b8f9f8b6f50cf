//! The AWS regions where IVS Chat is offered (botocore's `ivschat` endpoints; the AWS General Reference
//! lists the same seven), shared by the operator's metrics labels and the emulator's regions.

/// Every IVS Chat region.
pub const IVSCHAT_REGIONS: [&str; 7] = [
    "us-east-1",
    "us-west-2",
    "eu-west-1",
    "eu-central-1",
    "ap-northeast-1",
    "ap-northeast-2",
    "ap-south-1",
];
