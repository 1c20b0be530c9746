import * as iam from 'aws-cdk-lib/aws-iam';
import { Construct } from 'constructs';

/**
 * An IAM role whose permissions live in one customer-managed policy instead of
 * an inline policy. Every grant helper (`bucket.grant…`, `queue.grant…`,
 * `fn.addToRolePolicy`) ends in `addToPrincipalPolicy`, which is redirected
 * here, so CDK's grants keep working while the role carries no inline policy
 * (HIPAA.Security-IAMNoInlinePolicy) and no AWS-managed policy (AwsSolutions-IAM4).
 * A managed policy is also a versioned, reviewable resource of its own.
 */
export class ManagedPolicyRole extends iam.Role {
  /** Holds every statement granted to this role. */
  readonly policy: iam.ManagedPolicy;

  constructor(scope: Construct, id: string, props: iam.RoleProps) {
    super(scope, id, props);
    this.policy = new iam.ManagedPolicy(this, 'Policy', { roles: [this], description: props.description });
  }

  override addToPrincipalPolicy(statement: iam.PolicyStatement): iam.AddToPrincipalPolicyResult {
    this.policy.addStatements(statement);
    return { statementAdded: true, policyDependable: this.policy };
  }
}
