Feature: A case belongs to the organisation that opened it, and to those it is shared with, and every read of it is accounted for
  As a case worker of a national information bureau,
  I want my cases kept from other organisations unless we decide to share one, for a purpose,
  so that information that could endanger a person reaches only those who need it.

  Background:
    Given the case worker has opened a case for the prisoner of war "Aram Testyan", a national of AM
    And the case worker has recorded that AZ captured the person at "Hadrut" on 2020-11-09, according to the ICRC
    And a case worker of "org-b" has a key

  Scenario: A case worker of another organisation cannot see the case
    When the case worker of "org-b" looks at the case
    Then the register answers 404 "not-found"
    And the case worker of "org-b" finds no case named "Testyan"
    And the case worker of "org-b" counts 0 cases in the summary
    And the case worker of "org-b" cannot record a note on the case

  Scenario: Sharing a case with a purpose
    When the case worker shares the case with "org-b" for "a tracing request from the family"
    Then the register answers 201
    And the case is shared with "org-b" for "a tracing request from the family"
    And the case's history records the share, made by "worker-1" of "org-a"
    When the case worker of "org-b" looks at the case
    Then the register answers 200
    And the person is held by AZ at "Hadrut"

  Scenario: Only the owning organisation shares a case, and a share can end
    Given the case worker has shared the case with "org-b" for "a tracing request from the family"
    When the case worker of "org-b" shares the case with "org-a" for "anything"
    Then the register answers 403 "forbidden"
    When the case worker ends the share with "org-b"
    Then the register answers 200
    When the case worker of "org-b" looks at the case
    Then the register answers 404 "not-found"

  Scenario: An auditor lists who read a case
    When the case worker of "org-b" looks at the case
    And the case worker looks at the case
    And the auditor lists who read the case
    Then the read audit shows 1 read, by "worker-1" of "org-a" through "GET /cases/{case_id}"
