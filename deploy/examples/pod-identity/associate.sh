#!/usr/bin/env bash
# EKS Pod Identity: no ServiceAccount annotation is needed; the association below gives the operator's
# ServiceAccount the role. Needs the eks-pod-identity-agent add-on on the cluster.
#   CLUSTER=my-cluster ACCOUNT=111122223333 bash deploy/examples/pod-identity/associate.sh
set -euo pipefail
: "${CLUSTER:?set CLUSTER to the EKS cluster name}"
: "${ACCOUNT:?set ACCOUNT to the AWS account id}"
ROLE=${ROLE:-ivschat-operator}
POLICY_FILE=${POLICY_FILE:-deploy/iam-policy.json}
here=$(cd "$(dirname "$0")" && pwd)

aws iam create-role --role-name "$ROLE" \
  --assume-role-policy-document "file://$here/trust-policy.json"
aws iam put-role-policy --role-name "$ROLE" --policy-name ivschat-operator \
  --policy-document "file://$POLICY_FILE"
aws eks create-pod-identity-association --cluster-name "$CLUSTER" \
  --namespace ivschat-system --service-account ivschat-operator \
  --role-arn "arn:aws:iam::$ACCOUNT:role/$ROLE"
