import { Aws, Duration } from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as actions from 'aws-cdk-lib/aws-cloudwatch-actions';
import type * as apigwv2 from 'aws-cdk-lib/aws-apigatewayv2';
import * as iam from 'aws-cdk-lib/aws-iam';
import type * as kms from 'aws-cdk-lib/aws-kms';
import type * as lambda from 'aws-cdk-lib/aws-lambda';
import * as sns from 'aws-cdk-lib/aws-sns';
import * as subscriptions from 'aws-cdk-lib/aws-sns-subscriptions';
import type * as sqs from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';

export interface ArchiveAlarmsProps {
  readonly key: kms.IKey;
  readonly email?: string;
}

/**
 * Alarms of the archive, all notifying one KMS-encrypted SNS topic (with an
 * optional e-mail subscription). Every alarm fires on the first occurrence:
 * for a clinical archive, a failed store or an image stuck in the
 * dead-letter queue is worth a look, not a statistic.
 */
export class ArchiveAlarms extends Construct {
  readonly topic: sns.Topic;
  private readonly action: actions.SnsAction;

  constructor(scope: Construct, id: string, props: ArchiveAlarmsProps) {
    super(scope, id);
    this.topic = new sns.Topic(this, 'Topic', { displayName: 'DICOMweb archive alarms', masterKey: props.key, enforceSSL: true });
    // The TLS-only topic policy replaces the default one: CloudWatch (this account's alarms) must be allowed explicitly.
    this.topic.addToResourcePolicy(
      new iam.PolicyStatement({
        sid: 'CloudWatchAlarmsPublish',
        principals: [new iam.ServicePrincipal('cloudwatch.amazonaws.com')],
        actions: ['sns:Publish'],
        resources: [this.topic.topicArn],
        conditions: { StringEquals: { 'aws:SourceAccount': Aws.ACCOUNT_ID } },
      }),
    );
    if (props.email) this.topic.addSubscription(new subscriptions.EmailSubscription(props.email));
    this.action = new actions.SnsAction(this.topic);
  }

  /** Any message in the dead-letter queue: an upload that failed ingest five times. */
  onDeadLetters(id: string, queue: sqs.IQueue): cloudwatch.Alarm {
    return this.alarm(id, queue.metricApproximateNumberOfMessagesVisible({ period: Duration.minutes(1), statistic: 'Maximum' }), `${id}: messages in the ingest dead-letter queue`);
  }

  /** Server errors (5xx) of the HTTP API, whatever their source (function error, timeout, integration failure). */
  onApiServerErrors(id: string, api: apigwv2.HttpApi): cloudwatch.Alarm {
    return this.alarm(id, api.metricServerError({ period: Duration.minutes(5), statistic: 'Sum' }), `${id}: HTTP API answered 5xx`);
  }

  /** Unhandled errors and throttles of one function. */
  onFunction(id: string, fn: lambda.IFunction): void {
    this.alarm(`${id}Errors`, fn.metricErrors({ period: Duration.minutes(5), statistic: 'Sum' }), `${id}: function errors`);
    this.alarm(`${id}Throttles`, fn.metricThrottles({ period: Duration.minutes(5), statistic: 'Sum' }), `${id}: function throttled`);
  }

  private alarm(id: string, metric: cloudwatch.IMetric, description: string): cloudwatch.Alarm {
    const alarm = new cloudwatch.Alarm(this, id, {
      metric,
      threshold: 1,
      comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
      evaluationPeriods: 1,
      treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
      alarmDescription: description,
    });
    alarm.addAlarmAction(this.action);
    alarm.addOkAction(this.action);
    return alarm;
  }
}
